"""The "preparing" marker: what a run's preparation may half-make outside its run directory (a worktree at its
path on its branch), persisted in the record's ``extra`` before anything is made.

A runner stopped (or killed) while a slow ``post-checkout`` hook runs leaves a queued run with this marker: the
next start removes what it names (see :meth:`ExecutionMode.discard_half_made`) and queues the run again, which
never ran. Containers need no marker: the sweep at start removes every container of a run that is not running.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.modes import mode_of
from host_runner.run.process_group import RunFiles, start_ticks
from host_runner.run.stopping import signal_group

__all__ = ["PREPARING", "STARTING_STOP_WAIT_SECONDS", "discard_half_made", "never_launched", "with_marker",
           "without_marker"]

logger = logging.getLogger(__name__)

PREPARING = "_preparing"  # private: the API and callbacks do not show it

#: How long a stopping runner waits for a run still being prepared; then it leaves it, marked, to the next
#: start. Below the supervisor's TASK_STOP_SECONDS: the store is never closed under a task actor.
STARTING_STOP_WAIT_SECONDS = 8.0


def with_marker(record: TaskRecord, request: TaskRequest) -> TaskRecord | None:
    """``record`` carrying the marker of what preparing ``request`` may make; None when it makes nothing."""
    marker = mode_of(request).half_made(request)
    return record.evolve(extra={**record.extra, PREPARING: marker}) if marker else None


def without_marker(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` without the marker (moot once the run is prepared, or ended)."""
    return {key: value for key, value in extra.items() if key != PREPARING}


def discard_half_made(record: TaskRecord, request: TaskRequest) -> TaskRecord:
    """At start, for a queued run with a marker: remove what it names; the record without it. Never raises."""
    marker = record.extra.get(PREPARING)
    if not isinstance(marker, Mapping):
        return record
    try:
        files = RunFiles(Path(record.log_dir or "."))
        done = mode_of(request).discard_half_made(request, files, marker)
    except Exception:
        logger.exception("could not clean up what task %s left half-made", record.task_id)
        done = None
    if done:
        logger.info("task %s was being prepared when the runner stopped: %s; queued again", record.task_id, done)
    return record.evolve(extra=without_marker(record.extra))


def never_launched(record: TaskRecord) -> bool:
    """At start, for a run recorded as running: True when its wrapper was never released (the runner stopped
    between starting it and persisting its pid, see host_runner.run.wrapper); the wrapper, if still there, waits
    for a go that will never come and is killed."""
    if record.pid is None or not record.log_dir:
        return False
    if RunFiles(Path(record.log_dir)).launched.exists():
        return False
    if record.pid_start_ticks is not None and start_ticks(record.pid) == record.pid_start_ticks:
        signal_group(record.pid, signal.SIGKILL)
    return True
