"""cgroup v1: one directory per task in each hierarchy (pids, memory, cpuacct, freezer; cpu with a CPU limit), the
fallback where the controllers are not in the unified hierarchy (many CI hosts, older distributions).

Layout, in each hierarchy: ``<root>/host-runner-<instance id>/task-<hash of task and run id>``, where ``<root>``
is HOST_RUNNER_CGROUP_ROOT or the runner's own cgroup in that hierarchy (so that a task's memory still counts
against whatever limits the runner itself; v1 has no rule against processes in inner cgroups).
"""

from __future__ import annotations

import errno
from pathlib import Path

from host_runner.domain.limits import CgroupUsage, TaskLimits
from host_runner.limits.files import (
    CgroupError, Mounts, kill_rounds, make_directory, procs, read_int, read_keyed, remove_directory, signal_all,
    under, write,
)

CFS_PERIOD_US = 100_000
#: The hierarchy whose ``cgroup.procs`` says which processes a task has, first found of these: every process of a
#: task is in all of its hierarchies (the wrapper is added to each before it runs anything, children inherit all),
#: so one list is enough; reading all five cost a cancel five file reads per look (issue 22). ``pids`` first: it
#: is also the one that bounds a fork bomb.
MEMBERSHIP_ORDER = ("pids", "freezer", "memory", "cpuacct", "cpu")
#: How often a kill reads whether the freezer reports FROZEN before killing anyway (a frozen cgroup cannot fork).
FREEZE_CHECKS = 20


class V1Cgroup:
    """One task's directories, one per hierarchy."""

    def __init__(self, name: str, directories: dict[str, Path]) -> None:
        self.name = name
        self.directories = directories

    def add(self, pid: int) -> None:
        for directory in self.directories.values():
            write(directory / "cgroup.procs", str(pid))

    def membership(self) -> Path | None:
        """The one directory whose ``cgroup.procs`` lists the task's processes (see :data:`MEMBERSHIP_ORDER`);
        None when the cgroup has no directory left (removed as it was found)."""
        for controller in MEMBERSHIP_ORDER:
            if controller in self.directories:
                return self.directories[controller]
        return next(iter(self.directories.values()), None)

    def pids(self) -> list[int]:
        membership = self.membership()
        return sorted(procs(membership)) if membership is not None else []

    def signal(self, signum: int) -> None:
        signal_all(self.pids(), signum)

    def kill(self) -> None:
        """Freeze (no process can fork any more), SIGKILL everything, thaw (the kills take effect). Without a
        freezer hierarchy, a few rounds of kill; pids.max bounds how many a fork bomb can add meanwhile."""
        freezer, membership = self.directories.get("freezer"), self.membership()
        if membership is None:
            return  # nothing left to kill
        if freezer is None:
            kill_rounds([membership])
            return
        try:
            write(freezer / "freezer.state", "FROZEN")
        except CgroupError:
            kill_rounds([membership])
            return
        # Look a few times whether every task froze, without sleeping: this runs in an actor's or the reactor's
        # thread. A process that forked meanwhile is caught by the next kill (finish() repeats it until empty).
        for _ in range(FREEZE_CHECKS):
            if read_text_state(freezer) in ("FROZEN", ""):
                break
        kill_rounds([membership], rounds=2)
        try:
            write(freezer / "freezer.state", "THAWED")
        except CgroupError:
            pass

    def usage(self) -> CgroupUsage:
        memory, cpuacct, pids = (self.directories.get(name) for name in ("memory", "cpuacct", "pids"))
        cpu_ns = read_int(cpuacct / "cpuacct.usage") if cpuacct else None
        return CgroupUsage(
            memory_peak_bytes=read_int(memory / "memory.max_usage_in_bytes") if memory else None,
            cpu_seconds=round(cpu_ns / 1e9, 3) if cpu_ns is not None else None,
            pids_peak=read_int(pids / "pids.peak") if pids else None,
            oom_kills=(read_keyed(memory / "memory.oom_control", "oom_kill") or 0) if memory else 0,
        )

    def remove(self) -> bool:
        return all([remove_directory(directory) for directory in self.directories.values()])


def read_text_state(freezer: Path) -> str:
    try:
        return (freezer / "freezer.state").read_text().strip()
    except OSError:
        return ""


class V1Tree:
    """This runner's parent directories, one per v1 hierarchy it may write."""

    version = 1

    def __init__(self, parents: dict[str, Path]) -> None:
        self.parents = parents
        self.description = f"v1 ({', '.join(sorted(parents))})"
        self.location = str(next(iter(parents.values())))

    @classmethod
    def open(cls, mounts: Mounts, root: str | None, parent_name: str) -> V1Tree:
        """Make this runner's parent in every v1 hierarchy it can write; CgroupError when none."""
        parents: dict[str, Path] = {}
        problems: list[str] = []
        for controller, mount in sorted(mounts.v1.items()):
            parent = under(mount, root or mounts.own_v1.get(controller, "/")) / parent_name
            try:
                make_directory(parent, parents=root is not None)  # HOST_RUNNER_CGROUP_ROOT is made if missing
            except CgroupError as exc:
                problems.append(str(exc))
                continue
            parents[controller] = parent
        if "memory" in parents:
            # Children count in their parent's usage and limits (the default since kernel 4.x; an old one may not).
            if read_int(parents["memory"] / "memory.use_hierarchy") == 0:
                try:
                    write(parents["memory"] / "memory.use_hierarchy", "1")
                except CgroupError:
                    pass
        if not parents:
            raise CgroupError(errno.ENOENT, problems[0] if problems else "no cgroup v1 hierarchy is mounted")
        return cls(parents)

    def controllers(self) -> set[str]:
        return set(self.parents)

    def create(self, name: str, limits: TaskLimits) -> V1Cgroup:
        # The cpu hierarchy only enforces a CPU limit (cpuacct counts): without one, a task is not made a cgroup
        # there (each hierarchy is a mkdir, a move and an rmdir per task, kernel work that costs the runner CPU).
        cgroup = V1Cgroup(name, {controller: parent / name for controller, parent in self.parents.items()
                                 if controller != "cpu" or limits.cpus})
        try:
            for directory in cgroup.directories.values():
                make_directory(directory)
            directories = cgroup.directories
            if limits.memory:
                write(directories["memory"] / "memory.limit_in_bytes", str(limits.memory))
                if (directories["memory"] / "memory.memsw.limit_in_bytes").exists():
                    # Memory plus swap: the limit means what it says, an OOM kill rather than swapping.
                    write(directories["memory"] / "memory.memsw.limit_in_bytes", str(limits.memory))
            if limits.pids:
                write(directories["pids"] / "pids.max", str(limits.pids))
            if limits.cpus:
                write(directories["cpu"] / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                write(directories["cpu"] / "cpu.cfs_quota_us", str(max(1000, int(limits.cpus * CFS_PERIOD_US))))
        except (CgroupError, KeyError):
            cgroup.remove()
            raise
        return cgroup

    def find(self, name: str) -> V1Cgroup | None:
        directories = {controller: parent / name for controller, parent in self.parents.items()}
        if not any(directory.is_dir() for directory in directories.values()):
            return None
        return V1Cgroup(name, {c: d for c, d in directories.items() if d.is_dir()})

    def names(self) -> list[str]:
        found: set[str] = set()
        for parent in self.parents.values():
            try:
                found.update(entry.name for entry in parent.iterdir() if entry.name.startswith("task-"))
            except OSError:
                continue
        return sorted(found)

    def close(self) -> None:
        for parent in self.parents.values():
            remove_directory(parent)  # only succeeds once no task cgroup is left in it


__all__ = ["V1Cgroup", "V1Tree"]
