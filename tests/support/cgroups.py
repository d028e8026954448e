"""Task cgroups seen from a test: where a run's cgroup is, which processes are in it, and the test root that
every runner under test puts its task cgroups in (HOST_RUNNER_CGROUP_ROOT, set by conftest.py), removed again at
the end of the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from host_runner.domain.limits import cgroup_name
from host_runner.limits.files import procs, read_mounts

__all__ = ["TEST_CGROUP_ROOT", "cgroup_directories", "in_cgroup", "remove_test_root", "require_v1", "v2_mount"]

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


def cgroup_directories(config_cgroup_tree: object, task_id: str, run_id: str = "run-1") -> list[Path]:
    """The directories of a run's cgroup (every v1 hierarchy, or the one v2 directory), existing or not."""
    name = cgroup_name(task_id, run_id)
    parents = getattr(config_cgroup_tree, "parents", None)
    if parents is not None:
        return [parent / name for parent in parents.values()]
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
