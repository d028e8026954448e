"""cgroup v2 (production hosts under systemd): task cgroups in a subtree the runner may write.

Layout: ``<root>/host-runner-<instance id>/task-<hash of task and run id>``. ``<root>`` is HOST_RUNNER_CGROUP_ROOT,
or the runner's own cgroup, which systemd delegates to the service with ``Delegate=yes`` (deploy/host-runner.service).
cgroup v2 lets a cgroup hand controllers to its children only while no process sits in it ("no internal
processes"), so when the runner's own cgroup is the root, was delegated by systemd (its ``trusted.delegate``
mark) and still holds the service's processes, they are moved into a leaf beside the task cgroups,
``<root>/runner``, first (what systemd's documentation asks of a delegated service). An undelegated cgroup is
never rearranged: the task cgroups then get the controllers it already hands down, or none. Killing is one write to ``cgroup.kill`` (kernel 5.14+): the kernel kills every process in the cgroup,
also those forked meanwhile.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from host_runner.domain.limits import CgroupUsage, TaskLimits
from host_runner.limits.files import (
    CgroupError, Mounts, kill_rounds, make_directory, procs, read_int, read_keyed, read_text, remove_directory,
    signal_all, under, write,
)

CPU_PERIOD_US = 100_000
#: The controllers a task cgroup gets when its parent offers them: limits and accounting.
WANTED = ("memory", "pids", "cpu")
RUNNER_LEAF = "runner"


class V2Cgroup:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory

    def add(self, pid: int) -> None:
        write(self.directory / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        return procs(self.directory)

    def signal(self, signum: int) -> None:
        signal_all(self.pids(), signum)

    def kill(self) -> None:
        if (self.directory / "cgroup.kill").exists():
            try:
                write(self.directory / "cgroup.kill", "1")
                return
            except CgroupError as exc:
                if exc.errno == errno.ENOENT:
                    return  # already removed: nothing is left in it
        # Kernels before 5.14: freeze (no fork can outrun the kill), kill, thaw.
        frozen = (self.directory / "cgroup.freeze").exists()
        if frozen:
            write(self.directory / "cgroup.freeze", "1")
        kill_rounds([self.directory])
        if frozen:
            write(self.directory / "cgroup.freeze", "0")

    def usage(self) -> CgroupUsage:
        usec = read_keyed(self.directory / "cpu.stat", "usage_usec")
        return CgroupUsage(
            memory_peak_bytes=read_int(self.directory / "memory.peak"),
            cpu_seconds=round(usec / 1e6, 3) if usec is not None else None,
            pids_peak=read_int(self.directory / "pids.peak"),
            oom_kills=read_keyed(self.directory / "memory.events", "oom_kill") or 0,
        )

    def remove(self) -> bool:
        return remove_directory(self.directory)


class V2Tree:
    version = 2

    def __init__(self, parent: Path, controllers: set[str]) -> None:
        self.parent = parent
        self.offered = controllers
        shown = ", ".join(sorted(controllers)) or "no controllers: membership and kill only"
        self.description = f"v2 ({shown})"
        self.location = str(parent)

    @classmethod
    def open(cls, mounts: Mounts, root: str | None, parent_name: str) -> V2Tree:
        """Make this runner's parent in the unified hierarchy and hand it what controllers it can get."""
        if mounts.unified is None:
            raise CgroupError(errno.ENOENT, "no cgroup2 file system is mounted")
        base = under(mounts.unified, root or mounts.own_unified)
        if root is not None:
            make_directory(base, parents=True)  # HOST_RUNNER_CGROUP_ROOT is made if missing
        wanted = set(WANTED) & set((read_text(base / "cgroup.controllers") or "").split())
        own = root is None or root == mounts.own_unified
        enabled = _enable(base, wanted, move_own=own and base != mounts.unified and delegated(base))
        parent = base / parent_name
        make_directory(parent)
        if enabled:
            enabled = _enable(parent, enabled, move_own=False)
        return cls(parent, enabled)

    def controllers(self) -> set[str]:
        return set(self.offered)

    def create(self, name: str, limits: TaskLimits) -> V2Cgroup:
        cgroup = V2Cgroup(name, self.parent / name)
        make_directory(cgroup.directory)
        try:
            if limits.memory:
                write(cgroup.directory / "memory.max", str(limits.memory))
                if (cgroup.directory / "memory.swap.max").exists():
                    write(cgroup.directory / "memory.swap.max", "0")  # an OOM kill at the limit, not swapping
            if limits.pids:
                write(cgroup.directory / "pids.max", str(limits.pids))
            if limits.cpus:
                write(cgroup.directory / "cpu.max", f"{max(1000, int(limits.cpus * CPU_PERIOD_US))} {CPU_PERIOD_US}")
        except CgroupError:
            cgroup.remove()
            raise
        return cgroup

    def find(self, name: str) -> V2Cgroup | None:
        directory = self.parent / name
        return V2Cgroup(name, directory) if directory.is_dir() else None

    def names(self) -> list[str]:
        try:
            return sorted(entry.name for entry in self.parent.iterdir() if entry.name.startswith("task-"))
        except OSError:
            return []

    def close(self) -> None:
        remove_directory(self.parent)


def delegated(directory: Path) -> bool:
    """systemd (251+) marks a cgroup it delegated (``Delegate=yes``) with the ``trusted.delegate`` extended
    attribute (``user.delegate`` for a user manager). Only then are the processes sitting in the runner's own
    cgroup the service's to move: in a login session's scope they would be the user's shell and everything else."""
    for name in ("trusted.delegate", "user.delegate"):
        try:
            if os.getxattr(directory, name) == b"1":
                return True
        except OSError:
            continue
    return False


def _enable(directory: Path, controllers: set[str], *, move_own: bool) -> set[str]:
    """Hand ``controllers`` to the children of ``directory``; what it could hand. When processes sitting in
    ``directory`` forbid it (EBUSY) and it is the runner's delegated cgroup, they move into its leaf first."""
    if not controllers:
        return set()
    line = " ".join(f"+{name}" for name in sorted(controllers))
    try:
        write(directory / "cgroup.subtree_control", line)
        return controllers
    except CgroupError as exc:
        if exc.errno != errno.EBUSY or not move_own:
            return _offered(directory)
    leaf = directory / RUNNER_LEAF
    make_directory(leaf)
    for _ in range(3):  # processes may fork while they are moved: repeat until none is left behind
        pending = procs(directory)
        if not pending:
            break
        for pid in pending:
            try:
                write(leaf / "cgroup.procs", str(pid))
            except CgroupError:
                pass  # exited meanwhile
        time.sleep(0.01)
    try:
        write(directory / "cgroup.subtree_control", line)
    except CgroupError:
        pass
    return _offered(directory)


def _offered(directory: Path) -> set[str]:
    return set((read_text(directory / "cgroup.subtree_control") or "").split()) & set(WANTED)
