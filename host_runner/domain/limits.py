"""Resource limits of host tasks: what an operator allows (``HOST_RUNNER_TASK_*``), what a submission asks for
(``limits``), and the seam through which the runner reaches a task's cgroup (implemented in host_runner.limits,
which this package may not import).

A limit of 0 means none. A submission may only lower the operator's maximum (or set one where the operator set
none); asking for more is refused naming the field, because a limit is the operator's protection of the host.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from host_runner.domain.errors import ValidationError

#: ``4G``, ``512m``, ``1.5g``, ``65536``: a byte count with an optional binary suffix (k, m, g, t).
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
#: Below this a task cannot even start its wrapper; the kernel would OOM-kill it at once.
MIN_MEMORY_BYTES = 4 * 1024**2
MAX_PIDS = 4_194_304  # the kernel's pid_max ceiling
MAX_CPUS = 1024.0


def parse_size(raw: str) -> int:
    """A memory size (``4G``, ``512m``, ``0``) in bytes; ValueError when it is not one."""
    match = SIZE.fullmatch(raw.strip())
    if match is None:
        raise ValueError("not a size such as 512M or 4G")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value and value < MIN_MEMORY_BYTES:
        raise ValueError(f"below {MIN_MEMORY_BYTES // 1024**2}M")
    return value


def format_size(value: int) -> str:
    """Bytes as the shortest exact ``NG``/``NM``/``NK`` (what messages show; the setting's own spelling)."""
    for suffix, unit in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return f"{value} bytes"


@dataclass(frozen=True)
class TaskLimits:
    """Limits of one task (or the operator's maximum): bytes of memory, processes, CPUs; 0 = none."""

    memory: int = 0
    pids: int = 0
    cpus: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.memory or self.pids or self.cpus)

    def to_json(self) -> dict[str, Any]:
        return {"memory": self.memory, "pids": self.pids, "cpus": self.cpus}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TaskLimits | None:
        return None if data is None else cls(int(data["memory"]), int(data["pids"]), float(data["cpus"]))

    def within(self, requested: TaskLimits | None) -> TaskLimits:
        """The limits a task runs with: what it asked for, else the operator's (validated to be no more)."""
        if requested is None:
            return self
        return TaskLimits(requested.memory or self.memory, requested.pids or self.pids, requested.cpus or self.cpus)


def _number(raw: Any, field: str, kind: type) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValidationError(field, "must be a number")
    if kind is int and raw != int(raw):
        raise ValidationError(field, "must be an integer")
    if raw <= 0:
        raise ValidationError(field, "must be more than 0")
    return raw


def parse_limits(raw: Any, maximum: TaskLimits) -> TaskLimits | None:
    """A submission's ``limits`` object under the operator's ``maximum``; ValidationError names the field."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationError("limits", "must be an object with memory, pids and/or cpus")
    unknown = sorted(set(raw) - {"memory", "pids", "cpus"})
    if unknown:
        raise ValidationError(f"limits.{unknown[0]}", "is not a limit (memory, pids, cpus)")
    memory = raw.get("memory")
    if isinstance(memory, str):
        try:
            memory = parse_size(memory)
        except ValueError as exc:
            raise ValidationError("limits.memory", f"must be a size such as 512M or bytes ({exc})") from None
        if memory == 0:
            raise ValidationError("limits.memory", "must be more than 0")
    elif memory is not None:
        memory = int(_number(memory, "limits.memory", int))
        if memory < MIN_MEMORY_BYTES:
            raise ValidationError("limits.memory", f"must be at least {format_size(MIN_MEMORY_BYTES)}")
    pids = None if raw.get("pids") is None else int(_number(raw["pids"], "limits.pids", int))
    cpus = None if raw.get("cpus") is None else float(_number(raw["cpus"], "limits.cpus", float))
    checks = (("memory", memory, maximum.memory, "HOST_RUNNER_TASK_MEMORY_MAX", format_size),
              ("pids", pids, maximum.pids or MAX_PIDS, "HOST_RUNNER_TASK_PIDS_MAX", str),
              ("cpus", cpus, maximum.cpus or MAX_CPUS, "HOST_RUNNER_TASK_CPUS", lambda v: f"{v:g}"))
    for name, value, most, setting, show in checks:
        if value is not None and most and value > most:
            raise ValidationError(f"limits.{name}", f"must be at most {show(most)} ({setting})")
    return TaskLimits(memory or 0, pids or 0, cpus or 0.0)


@dataclass(frozen=True)
class CgroupUsage:
    """What a task's cgroup counted (None: this kernel or controller does not say)."""

    memory_peak_bytes: int | None = None
    cpu_seconds: float | None = None
    pids_peak: int | None = None
    oom_kills: int = 0

    def record_fields(self) -> dict[str, Any]:
        return {"memory_peak_bytes": self.memory_peak_bytes, "cpu_seconds": self.cpu_seconds,
                "pids_peak": self.pids_peak}


class TaskCgroup(Protocol):
    """One task's cgroup (every hierarchy it lives in, under cgroup v1)."""

    name: str

    def add(self, pid: int) -> None:
        """Move ``pid`` (the wrapper, before it starts the command) into the cgroup."""

    def pids(self) -> list[int]:
        """Every process in the cgroup now."""

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process in it."""

    def kill(self) -> None:
        """SIGKILL everything in it, including processes forked meanwhile (cgroup.kill, or freeze + kill)."""

    def usage(self) -> CgroupUsage: ...

    def remove(self) -> bool:
        """Remove it once empty; False when processes are still in it."""


class CgroupTree(Protocol):
    """Where this runner's task cgroups live (one backend: cgroup v2 or v1), settled at start."""

    version: int
    description: str  # "v2 (memory, pids, cpu)": what /health shows
    location: str  # where this runner's task cgroups are made (the start log says it)

    def create(self, name: str, limits: TaskLimits) -> TaskCgroup: ...

    def find(self, name: str) -> TaskCgroup | None: ...

    def names(self) -> list[str]:
        """The task cgroups that exist now (for the orphan sweep)."""

    def close(self) -> None:
        """The runner stops: remove the runner's parent cgroup if no task is left in it."""


def cgroup_name(task_id: str, run_id: str) -> str:
    """The name of a run's cgroup: found again from the ids alone after a restart (re-adoption), and always a
    valid, short directory name whatever the ids hold (they may be 200 characters each)."""
    digest = hashlib.sha256(f"{task_id}\0{run_id}".encode()).hexdigest()[:24]
    return f"task-{digest}"


@dataclass(frozen=True)
class CgroupRequest:
    """What a launcher needs to put its run in a cgroup: where, under which name, with which limits."""

    tree: CgroupTree
    name: str
    limits: TaskLimits
