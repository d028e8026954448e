"""Task cgroups seen from a test: where a run's cgroup is, which processes are in it, and the test root that
every runner under test puts its task cgroups in (HOST_RUNNER_CGROUP_ROOT, set by conftest.py), removed again at
the end of the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from host_runner.domain.limits import cgroup_name
from host_runner.limits.files import procs, read_mounts

__all__ = ["TEST_CGROUP_ROOT", "alive", "cgroup_directories", "daemon_script", "in_cgroup", "killed", "outsider",
           "remove_test_root", "require_v1", "v2_mount"]

#: Under the hierarchies' roots, not the test process's own cgroup: the machinery that runs this session owns
#: that one, and a directory left in it would keep it from being removed.
TEST_CGROUP_ROOT = "/host-runner-tests"


def require_v1(*controllers: str) -> dict[str, Path]:
    """The v1 mounts, or skip (fail under CI) where this machine lacks them or the test is not root."""
    mounts = read_mounts()
    missing = [name for name in controllers if name not in mounts.v1]
    if missing or os.geteuid() != 0:
        reason = f"needs root and cgroup v1 {', '.join(missing or controllers)}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return mounts.v1


def v2_mount() -> Path:
    mounts = read_mounts()
    if mounts.unified is None or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("needs root and a cgroup2 mount")
        pytest.skip("needs root and a cgroup2 mount")
    return mounts.unified


def cgroup_directories(config_cgroup_tree: object, task_id: str, run_id: str = "run-1", *,
                       cpu_limit: bool = False) -> list[Path]:
    """The directories of a run's cgroup (every v1 hierarchy it uses: the cpu one only with a CPU limit; or the one
    v2 directory), existing or not."""
    name = cgroup_name(task_id, run_id)
    parents = getattr(config_cgroup_tree, "parents", None)
    if parents is not None:
        return [parent / name for controller, parent in parents.items() if controller != "cpu" or cpu_limit]
    return [getattr(config_cgroup_tree, "parent") / name]


def in_cgroup(directories: list[Path]) -> list[int]:
    return sorted({pid for directory in directories for pid in procs(directory)})


def remove_test_root() -> None:
    """rmdir what is left (empty) under the test root in every hierarchy, deepest first."""
    mounts = read_mounts()
    for mount in [*mounts.v1.values(), *([mounts.unified] if mounts.unified else [])]:
        root = mount / TEST_CGROUP_ROOT.strip("/")
        if not root.is_dir():
            continue
        for directory in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                directory.rmdir()
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def daemon_script(pid_file: Path, then: str = "echo started") -> str:
    """``sh -c`` text that starts a daemon which left the process group (setsid), double-forked (its parent exited)
    and ignores SIGTERM, writes its pid to ``pid_file``, runs ``then`` and sleeps."""
    return (f"setsid sh -c 'trap \"\" TERM; (trap \"\" TERM; exec sleep 300) & echo $! > \"$0\"; exit 0' "
            f"'{pid_file}'; while [ ! -s '{pid_file}' ]; do sleep 0.05; done; {then}; exec sleep 300")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextmanager
def outsider() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the test's own, in a session of its own (no descendant of any wrapper), that ignores SIGTERM
    once it said so; killed at the end if still alive. :func:`killed` checks that something else killed it."""
    process = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                "signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"],
                               start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def killed(process: subprocess.Popen[bytes]) -> bool:
    """The outsider was ended by SIGKILL (it ignores TERM: only a cgroup's kill ends it) within 10 s."""
    try:
        return process.wait(timeout=10) == -signal.SIGKILL
    except subprocess.TimeoutExpired:
        return False
