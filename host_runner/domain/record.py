"""What a task became: the persisted run (:class:`TaskRecord`), its statuses, and the runner's clock format."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from host_runner.domain.request import Workspace

STATUSES = ("queued", "running", "success", "failed", "canceled")
ACTIVE_STATUSES = frozenset({"queued", "running"})
TERMINAL_STATUSES = frozenset({"success", "failed", "canceled"})
#: A failed run's ``failure_reason``: its command exited non-zero (or was killed), its timeout passed, its output
#: went over HOST_RUNNER_MAX_OUTPUT_BYTES, the agent reported an error, ran out of turns or lacks credentials,
#: the runner lost it (restarted and the process was gone, or an internal error), or it could not be started.
FAILURE_REASONS = ("exit_code", "timeout", "output_limit", "agent_error", "max_turns", "auth_required", "lost",
                   "setup", "lock_violation", "oom")
#: A canceled run's ``cancel_reason``: POST /tasks/{id}/cancel, the runner's shutdown with
#: HOST_RUNNER_SHUTDOWN=cancel, or an idle close.
CANCEL_REASONS = ("api", "shutdown", "idle")


def utc_now() -> str:
    """The current time as ISO-8601 UTC with microseconds, e.g. ``2026-11-23T09:00:00.123456Z``."""
    # isoformat, not strftime: glibc's strftime looks at /etc/localtime on every call (a stat, then a read).
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class TaskRecord:
    """One run of a task as stored and reported. ``extra`` holds mode-specific fields (worktree, container…)."""

    task_id: str
    run_id: str
    execution_mode: str
    executor: str
    status: str
    created_at: str
    updated_at: str
    timeout_seconds: float
    workspace: Workspace | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    pid_start_ticks: int | None = None
    container_id: str | None = None
    stdout: str = ""
    stderr: str = ""
    log_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Delivery state of the run's callback events (set on reads of one task only; never stored here).
    callbacks: tuple[dict[str, Any], ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.task_id, self.run_id)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def evolve(self, **changes: Any) -> TaskRecord:
        """A copy with ``changes`` applied and ``updated_at`` set to now."""
        return replace(self, updated_at=utc_now(), **changes)

    def to_public(self) -> dict[str, Any]:
        """The record as the API and callbacks show it (the contract's fields, then ours)."""
        logs = None
        if self.log_dir:
            logs = {
                "dir": self.log_dir,
                "stdout": os.path.join(self.log_dir, "stdout.log"),
                "stderr": os.path.join(self.log_dir, "stderr.log"),
            }
        data: dict[str, Any] = {
            "task_id": self.task_id,
            "run_id": self.run_id,
            "execution_mode": self.execution_mode,
            "workspace": self.workspace.to_json() if self.workspace else None,
            "status": self.status,
            "message": self.message,
            "executor": self.executor,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "container_id": self.container_id,
            "worktree_cleanup_attempted": self.extra.get("worktree_cleanup_attempted"),
            "worktree_cleanup_succeeded": self.extra.get("worktree_cleanup_succeeded"),
            "worktree_cleanup_message": self.extra.get("worktree_cleanup_message"),
            "pid": self.pid,
            "timeout_seconds": self.timeout_seconds,
            "logs": logs,
        }
        if self.callbacks is not None:
            data["callbacks"] = [dict(event) for event in self.callbacks]
        for key, value in self.extra.items():
            if not key.startswith("_"):  # private bookkeeping of the runner (such as a read offset)
                data.setdefault(key, value)
        return data
