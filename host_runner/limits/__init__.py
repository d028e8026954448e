"""Resource limits and whole-tree control of host tasks with cgroups: one cgroup per run, made before its
command starts, limits (memory, pids, CPUs), a kill that reaches every process in it, accounting, removal at
the end and an orphan sweep at start. One interface (:class:`~host_runner.domain.limits.CgroupTree`,
:class:`~host_runner.domain.limits.TaskCgroup`), two backends: ``v2`` (cgroup2, delegated by systemd) and ``v1``.
The launchers reach it through ``Config.cgroup_tree`` (host_runner.run may not import this package).

May import: host_runner.domain, host_runner.ops, host_runner.store (the sweep asks which runs are running).
"""

from __future__ import annotations

from host_runner.limits.files import CgroupError, read_mounts
from host_runner.limits.setup import prepare_cgroups, sweep_orphans
from host_runner.limits.v1 import V1Tree
from host_runner.limits.v2 import V2Tree

__all__ = ["CgroupError", "V1Tree", "V2Tree", "prepare_cgroups", "read_mounts", "sweep_orphans"]
