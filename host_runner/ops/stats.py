"""Counters that actors keep about themselves, for /metrics.

Each object is owned by one actor and only touched in that actor's thread; the metrics endpoint asks the
actor for a :meth:`snapshot` (immutable copies) instead of reading shared state. This keeps Prometheus out of
the actors and lets every app in a process (tests build several) expose its own numbers.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from host_runner.domain.record import TaskRecord

#: Task durations: from a second to a day.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
#: Callback delivery latency: from queued to delivered or given up (retries included).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


@dataclass(frozen=True)
class HistogramSnapshot:
    """Bucket upper bounds, the number of observations in each bucket (not cumulative), their sum and count."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # len(bounds) + 1: the last one is above every bound (+Inf)
    total: float
    count: int

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: ``(le, observations <= le)``, ending with ``+Inf``."""
        running = 0
        buckets = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


@dataclass
class Histogram:
    """A fixed-bucket histogram; not thread-safe (its owner is one actor)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(self.bounds, tuple(self.counts), self.total, self.count)


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds between two of our ISO-8601 UTC timestamps, None if either is missing."""
    if not start or not end:
        return None
    parse = datetime.fromisoformat  # accepts the trailing 'Z' since Python 3.11
    return max(0.0, (parse(end) - parse(start)).total_seconds())


@dataclass
class CallbackStats:
    """What the CallbackActor counts: attempts by result, events by outcome, and delivery latency."""

    attempts_ok: int = 0
    attempts_failed: int = 0
    delivered: int = 0
    given_up: int = 0
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))

    def attempted(self, ok: bool) -> None:
        if ok:
            self.attempts_ok += 1
        else:
            self.attempts_failed += 1

    def finished(self, delivered: bool, seconds: float) -> None:
        """An event left its lane: delivered, or given up after its last attempt."""
        if delivered:
            self.delivered += 1
        else:
            self.given_up += 1
        self.latency.observe(seconds)

    def snapshot(self) -> dict[str, object]:
        return {
            "attempts_ok": self.attempts_ok, "attempts_failed": self.attempts_failed,
            "delivered": self.delivered, "given_up": self.given_up, "latency": self.latency.snapshot(),
        }


@dataclass
class LockCheckCounts:
    """What the SupervisorActor counts of the lock checks of the runs that ended (shared-workspace runs in a
    git repository): by outcome, and the paths found outside the locks."""

    clean: int = 0
    violations: int = 0
    error: int = 0
    paths: int = 0

    def observe(self, extra: Mapping[str, Any]) -> None:
        """One ended run's record fields; a run without a check (another mode, no repository) counts nowhere."""
        if "lock_check_error" in extra:
            self.error += 1
        elif "lock_violations_count" in extra:
            count = int(extra["lock_violations_count"] or 0)
            self.paths += count
            if count:
                self.violations += 1
            else:
                self.clean += 1

    def snapshot(self) -> dict[str, int]:
        return {"clean": self.clean, "violations": self.violations, "error": self.error, "paths": self.paths}


MIB = 1024**2
#: Peak memory of a task's cgroup: from 16 MiB to 64 GiB.
MEMORY_BUCKETS = tuple(float(MIB * 2**power) for power in range(4, 17, 2))
#: Peak processes of a task's cgroup.
PIDS_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)


@dataclass
class EndedRuns:
    """What the runs that ended since the runner started add up to (for /metrics): their durations by executor
    and status, what their cgroups counted (host tasks; see host_runner.limits) by executor, and their
    lock checks."""

    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    memory_peak: dict[str, Histogram] = field(default_factory=dict)
    pids_peak: dict[str, Histogram] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    oom_kills: dict[str, int] = field(default_factory=dict)
    lock_checks: LockCheckCounts = field(default_factory=lambda: LockCheckCounts())

    def observe(self, record: TaskRecord) -> None:
        duration = seconds_between(record.started_at, record.finished_at)
        if duration is not None:
            self.durations.setdefault((record.executor, record.status), Histogram(DURATION_BUCKETS)).observe(duration)
        extra, executor = record.extra, record.executor
        self.lock_checks.observe(extra)
        if isinstance(extra.get("memory_peak_bytes"), int):
            self.memory_peak.setdefault(executor, Histogram(MEMORY_BUCKETS)).observe(extra["memory_peak_bytes"])
        if isinstance(extra.get("pids_peak"), int):
            self.pids_peak.setdefault(executor, Histogram(PIDS_BUCKETS)).observe(extra["pids_peak"])
        if isinstance(extra.get("cpu_seconds"), (int, float)):
            self.cpu_seconds[executor] = self.cpu_seconds.get(executor, 0.0) + extra["cpu_seconds"]
        if extra.get("failure_reason") == "oom":
            self.oom_kills[executor] = self.oom_kills.get(executor, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The cgroup figures: ``memory_peak`` and ``pids_peak`` (executor → histogram), ``cpu_seconds`` and
        ``oom`` (executor → total)."""
        return {
            "memory_peak": {name: histogram.snapshot() for name, histogram in self.memory_peak.items()},
            "pids_peak": {name: histogram.snapshot() for name, histogram in self.pids_peak.items()},
            "cpu_seconds": dict(self.cpu_seconds), "oom": dict(self.oom_kills),
        }
