"""The wrapper runs a command only once released, and records how it ended."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import pids_in_group, wait_for
from host_runner.process import ProcessSpec, RunFiles, read_exit_status, spawn


def make_spec(tmp_path: Path, script: str) -> ProcessSpec:
    return ProcessSpec(argv=("sh", "-c", script), env=dict(os.environ), cwd=tmp_path)


def test_an_abandoned_wrapper_never_runs_its_command(tmp_path: Path):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, f"touch {tmp_path / 'ran'}"), files)
    spawned.abandon()  # what happens when the runner dies before persisting the pid
    assert spawned.popen.wait(timeout=10) == 125
    assert not (tmp_path / "ran").exists()
    assert not files.launched.exists()
    assert read_exit_status(files.exit_status) is None


def test_a_released_wrapper_runs_the_command_and_records_its_status(tmp_path: Path):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, "echo out; echo err >&2; exit 9"), files)
    spawned.release()
    assert spawned.popen.wait(timeout=10) == 9
    assert files.launched.exists()
    assert files.stdout.read_text() == "out\n" and files.stderr.read_text() == "err\n"
    status = read_exit_status(files.exit_status)
    assert status is not None and status.exit_code == 9 and status.signal is None and status.error is None


def test_wrapper_records_the_signal_that_ended_the_command(tmp_path: Path):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, "echo ready; exec sleep 1000"), files)
    spawned.release()
    wait_for(lambda: files.stdout.read_text() == "ready\n")
    os.killpg(spawned.popen.pid, signal.SIGTERM)  # the whole group, as a cancel does
    assert spawned.popen.wait(timeout=10) == 143
    status = read_exit_status(files.exit_status)
    assert status is not None and status.signal == signal.SIGTERM and status.exit_code == 143


def test_wrapper_reports_a_command_that_cannot_start(tmp_path: Path):
    files = RunFiles(tmp_path / "run")
    files.create()
    spec = ProcessSpec(argv=(str(tmp_path / "missing"),), env=dict(os.environ), cwd=tmp_path)
    spawned = spawn(spec, files)
    spawned.release()
    assert spawned.popen.wait(timeout=10) == 127
    status = read_exit_status(files.exit_status)
    assert status is not None and "cannot start" in (status.error or "")
    assert not pids_in_group(spawned.popen.pid)
