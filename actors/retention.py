"""The RetentionActor: finished runs beyond ``HOST_RUNNER_RETENTION_SECONDS`` or beyond the newest
``HOST_RUNNER_RETENTION_MAX_RUNS`` go, oldest first: their row, their settled callback events, their run directory.

Why an actor of its own (started by actors/system.py) rather than the supervisor: the sweep needs nothing the
supervisor owns. What may not go is in the store (an active status, a pending callback event) and is checked
again in the deleting transaction, so a sweep cannot race a run that is active or still reporting; and the
supervisor's inbox, which every submission and read goes through, never waits behind a sweep. This actor
only keeps the schedule (a reactor timer) and the counts shown by ``/metrics``; each batch (SQLite deletes
in one short transaction, then ``rmtree`` of the batch's directories) runs in a helper thread that tells it
what it did. A full batch is followed by the next one at once; then the next sweep is scheduled.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from actors.base import Actor, handles
from host_runner.ops.config import Config
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor, Timer
from host_runner.store.sqlite import Store

logger = logging.getLogger(__name__)

BATCH = 200  # runs per transaction: a sweep never holds the store's lock for long
LONGEST_PAUSE = 300.0  # seconds between sweeps, at most (a quarter of the age bound when that is shorter)


@dataclass(frozen=True)
class Sweep:
    """tell, to the RetentionActor (at start, then from its timer): prune what is beyond the bounds."""


@dataclass(frozen=True)
class BatchPruned:
    """tell, from a sweep's helper thread: how many runs and events one batch removed; ``full`` when the batch
    was full (so there may be more)."""

    runs: int
    events: int
    full: bool
    error: BaseException | None = None


def prune_batch(store: Store, runs_dir: Path, max_age_seconds: float, max_runs: int) -> tuple[int, int, bool]:
    """One batch, in the caller's (helper) thread: the rows first (so a read answers 404 at once), then the
    run directories, then the task's directory if no run is left in it."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=max_age_seconds)
    candidates = store.prunable_runs(cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), max_runs, BATCH)
    deleted, events = store.delete_runs(candidates) if candidates else ([], 0)
    for task_id, run_id in deleted:
        directory = RunFiles.for_run(runs_dir, task_id, run_id).directory
        shutil.rmtree(directory, ignore_errors=True)
        try:
            directory.parent.rmdir()
        except OSError:
            pass  # another run of the task is still there
    return len(deleted), events, len(candidates) == BATCH


class RetentionActor(Actor):
    """Owns the retention schedule and the pruned counts."""

    def __init__(self, config: Config, store: Store, reactor: Reactor) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.reactor = reactor
        self.pause = max(0.5, min(LONGEST_PAUSE, config.retention_seconds / 4))
        self.sweeping = False
        self.timer: Timer | None = None
        self.counts = {"runs": 0, "callback_events": 0, "sweeps": 0, "failures": 0}

    def on_start(self) -> None:
        self.actor_ref.tell(Sweep())

    def on_stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    @handles(Sweep)
    def on_sweep(self, message: Sweep) -> None:
        if not self.sweeping:
            self.sweeping = True
            self._next_batch()

    def _next_batch(self) -> None:
        store, runs_dir, config = self.store, self.config.runs_dir, self.config
        self.in_background(
            lambda: prune_batch(store, runs_dir, config.retention_seconds, config.retention_max_runs),
            lambda result, error: BatchPruned(*(result or (0, 0, False)), error=error),
        )

    @handles(BatchPruned)
    def on_batch_pruned(self, message: BatchPruned) -> None:
        self.counts["runs"] += message.runs
        self.counts["callback_events"] += message.events
        if message.error is not None:
            self.counts["failures"] += 1
            logger.error("retention: a sweep failed: %s", message.error)
        elif message.full:
            self._next_batch()
            return
        self.sweeping = False
        self.counts["sweeps"] += 1
        self.timer = self.reactor.call_later(self.pause, self.tell_later(Sweep()))

    def describe(self) -> dict[str, Any]:
        return {"pruned_runs": self.counts["runs"], "pruned_callback_events": self.counts["callback_events"],
                "sweeps": self.counts["sweeps"], "failed_sweeps": self.counts["failures"],
                "sweeping": self.sweeping, "retention_seconds": self.config.retention_seconds,
                "retention_max_runs": self.config.retention_max_runs}
