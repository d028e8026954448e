"""The wrapper runs a command only once released, and records how it ended."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from host_runner.ops.config import Config, ConfigError
from host_runner.run.process_group import PYTHON_WRAPPER, ProcessSpec, RunFiles, read_exit_status, spawn
from host_runner.run.wrapper_build import build_native_wrapper, prepare_wrapper
from support.processes import pids_in_group
from support.waiting import wait_for


@pytest.fixture(params=["python", "native"])
def wrapper(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """Both builds of the wrapper must keep the same protocol."""
    if request.param == "python":
        return PYTHON_WRAPPER
    return (str(build_native_wrapper(tmp_path_factory.mktemp("bin"))),)


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def make_spec(tmp_path: Path, script: str) -> ProcessSpec:
    return ProcessSpec(argv=("sh", "-c", script), env=dict(os.environ), cwd=tmp_path)


def test_an_abandoned_wrapper_never_runs_its_command(tmp_path: Path, wrapper: tuple[str, ...]):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, f"touch {tmp_path / 'ran'}"), files, wrapper)
    spawned.abandon()  # what happens when the runner dies before persisting the pid
    assert spawned.popen.wait(timeout=10) == 125
    assert not (tmp_path / "ran").exists()
    assert not files.launched.exists()
    assert read_exit_status(files.exit_status) is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_before_go_means_the_command_never_runs(tmp_path: Path, wrapper: tuple[str, ...], signum: int):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, f"touch {tmp_path / 'ran'}"), files, wrapper)
    # Its handlers are in place (SIGHUP's is set last; Python's own SIGINT handler is there from its start, so
    # SIGINT's mask alone would not tell): it waits for "go".
    wait_for(lambda: catches(spawned.popen.pid, signal.SIGHUP))
    os.killpg(spawned.popen.pid, signum)  # a cancel that reaches the group before the runner released it
    assert spawned.popen.wait(timeout=10) == 125  # it exits by itself, without waiting for "go" or EOF
    spawned.release()  # too late, and harmless: nobody reads it any more
    assert not (tmp_path / "ran").exists()
    assert not files.launched.exists()


def test_a_wrapper_that_cannot_create_launched_does_not_run_its_command(tmp_path: Path, wrapper: tuple[str, ...]):
    files = RunFiles(tmp_path / "run")
    files.create()
    files.launched.mkdir()  # creating the file fails (as on a full or read-only disk)
    spawned = spawn(make_spec(tmp_path, f"touch {tmp_path / 'ran'}"), files, wrapper)
    spawned.release()
    assert spawned.popen.wait(timeout=10) == 125
    assert not (tmp_path / "ran").exists()
    status = read_exit_status(files.exit_status)
    assert status is not None and status.exit_code == 125 and "launched" in (status.error or "")


def test_a_released_wrapper_runs_the_command_and_records_its_status(tmp_path: Path, wrapper: tuple[str, ...]):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, "echo out; echo err >&2; exit 9"), files, wrapper)
    spawned.release()
    assert spawned.popen.wait(timeout=10) == 9
    assert files.launched.exists()
    assert files.stdout.read_text() == "out\n" and files.stderr.read_text() == "err\n"
    status = read_exit_status(files.exit_status)
    assert status is not None and status.exit_code == 9 and status.signal is None and status.error is None


def test_wrapper_records_the_signal_that_ended_the_command(tmp_path: Path, wrapper: tuple[str, ...]):
    files = RunFiles(tmp_path / "run")
    files.create()
    spawned = spawn(make_spec(tmp_path, "echo ready; exec sleep 1000"), files, wrapper)
    spawned.release()
    wait_for(lambda: files.stdout.read_text() == "ready\n")
    os.killpg(spawned.popen.pid, signal.SIGTERM)  # the whole group, as a cancel does
    assert spawned.popen.wait(timeout=10) == 143
    status = read_exit_status(files.exit_status)
    assert status is not None and status.signal == signal.SIGTERM and status.exit_code == 143


@pytest.mark.parametrize("name", ["missing", 'no "such"\\ \u00e9\n'],
                         ids=["plain", "quotes-and-non-ascii"])  # the status file must stay valid JSON
def test_wrapper_reports_a_command_that_cannot_start(tmp_path: Path, wrapper: tuple[str, ...], name: str):
    files = RunFiles(tmp_path / "run")
    files.create()
    spec = ProcessSpec(argv=(str(tmp_path / name),), env=dict(os.environ), cwd=tmp_path)
    spawned = spawn(spec, files, wrapper)
    spawned.release()
    assert spawned.popen.wait(timeout=10) == 127
    status = read_exit_status(files.exit_status)
    assert status is not None and status.exit_code == 127 and "cannot start" in (status.error or "")
    assert not pids_in_group(spawned.popen.pid)


def test_prepare_wrapper_builds_the_native_wrapper_once_in_the_data_dir(tmp_path: Path):
    first = prepare_wrapper(Config(data_dir=tmp_path, wrapper="native"))
    assert first.wrapper_argv is not None and len(first.wrapper_argv) == 1
    built = Path(first.wrapper_argv[0])
    assert built.parent == tmp_path / "bin"
    stamp = built.stat().st_mtime_ns
    again = prepare_wrapper(Config(data_dir=tmp_path, wrapper="auto"))
    assert again.wrapper_argv == first.wrapper_argv and built.stat().st_mtime_ns == stamp
    assert prepare_wrapper(Config(data_dir=tmp_path, wrapper="python")).wrapper_argv == PYTHON_WRAPPER


def test_without_a_compiler_auto_falls_back_to_python_and_native_refuses_to_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no cc to be found
    assert prepare_wrapper(Config(data_dir=tmp_path / "a", wrapper="auto")).wrapper_argv == PYTHON_WRAPPER
    with pytest.raises(ConfigError, match="HOST_RUNNER_WRAPPER=native"):
        prepare_wrapper(Config(data_dir=tmp_path / "b", wrapper="native"))


@pytest.mark.parametrize("ignores_term", [False, True])
def test_a_daemon_that_left_the_group_is_stopped_before_the_wrapper_exits(tmp_path: Path, wrapper: tuple[str, ...],
                                                                        ignores_term: bool):
    """The wrapper is a child subreaper: a daemon started with setsid is re-parented to it, and it TERMs it (KILLs
    it after the grace period if it ignores TERM) and reaps it before exiting with the command's code."""
    files = RunFiles(tmp_path / "run")
    files.create()
    pidfile = tmp_path / "daemon.pid"
    trap = "trap '' TERM; " if ignores_term else ""
    script = f"setsid sh -c \"{trap}echo \\$\\$ > {pidfile}; exec sleep 300\" </dev/null >/dev/null 2>&1 & " \
             f"while [ ! -s {pidfile} ]; do sleep 0.01; done; exit 3"
    spawned = spawn(make_spec(tmp_path, script), files, wrapper, grace=0.3)
    spawned.release()
    assert spawned.popen.wait(timeout=20) == 3
    daemon = int(pidfile.read_text())
    assert not os.path.exists(f"/proc/{daemon}")  # killed and reaped by the wrapper, not left to init
    status = read_exit_status(files.exit_status)
    assert status is not None and status.exit_code == 3
