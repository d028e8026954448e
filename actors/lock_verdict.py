"""The lock check of a shared-workspace run, as the TaskActor ends it: what its ending helper thread runs, and
what becomes of the run's status (``HOST_RUNNER_LOCK_VIOLATION``).

The git part (the snapshot taken when the run started, what changed since) is
host_runner/workspace/lock_check.py; the claims are the WorktreeRegistryActor's, asked from the helper thread
(never from the TaskActor's, whose inbox must not wait). The run's own claims are still held then: they are
released only once the CleanedUp message that carries the check's fields has arrived.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.messages import HeldAround, PathsHeldAround
from actors.run_session import Run
from actors.task_messages import CleanedUp
from host_runner.ops.config import Config
from host_runner.workspace.interface import Workspace
from host_runner.workspace.lock_check import MAX_ENTRIES
from host_runner.workspace.workspaces import SharedWorkspace

__all__ = ["cleaned_up", "lock_check_work", "reported_paths"]

logger = logging.getLogger(__name__)

#: How long the ending helper waits for the WorktreeRegistryActor's answer.
REGISTRY_ASK_SECONDS = 10.0


def reported_paths(files_changed: Any) -> tuple[str, ...]:
    """The paths an executor recorded in ``extra["files_changed"]``: strings, or objects with a ``path``
    string; anything else is skipped (the field is the executor's, written before this check existed)."""
    if not isinstance(files_changed, list):
        return ()
    paths = (item.get("path") if isinstance(item, dict) else item for item in files_changed[:MAX_ENTRIES])
    return tuple(path for path in paths if isinstance(path, str) and path and "\0" not in path)


def lock_check_work(run: Run, workspace: Workspace | None) -> Callable[[], dict[str, Any]]:
    """The check the ending helper thread runs after the cleanup (taken here, in the actor's thread): record
    fields, empty for a run that is not a shared-workspace one."""
    if not isinstance(workspace, SharedWorkspace):
        return dict
    owner, registry = run.record.key, run.services.registry
    data_dir = os.path.realpath(run.services.config.data_dir)  # the runner's own files are never the run's doing
    reported = reported_paths(run.record.extra.get("files_changed"))

    def work() -> dict[str, Any]:
        try:
            if registry is None:
                raise RuntimeError("no WorktreeRegistryActor")
            held: HeldAround = registry.ask(PathsHeldAround(owner), timeout=REGISTRY_ASK_SECONDS)
        except (pykka.ActorDeadError, pykka.Timeout, RuntimeError) as exc:
            logger.warning("lock check of task %s: the claims are unknown (%s)", owner[0], exc or type(exc).__name__)
            return {"lock_check_error": "the lock paths of the other tasks could not be asked for"}
        try:
            fields = workspace.check_locks([*held.own, *held.others, data_dir], reported)
        except Exception:  # a bug here must not cost the run its other after-run fields
            logger.exception("lock check of task %s failed", owner[0])
            return {"lock_check_error": "internal error in the lock check; see the runner log"}
        if fields.get("lock_violations_count"):
            logger.warning("task %s changed %d paths outside its lock paths", owner[0], fields["lock_violations_count"])
        return fields

    return work


def cleaned_up(config: Config, status: str, message: str, exit_code: int | None, fields: dict[str, Any],
               reason: str | None) -> Callable[[dict[str, Any] | None, BaseException | None], CleanedUp]:
    """The reply of the ending helper: ``fields`` (the session's) and the after-run work's go on the record. With
    ``HOST_RUNNER_LOCK_VIOLATION=fail`` a run that succeeded but changed paths outside its locks ends ``failed``
    (``failure_reason: lock_violation``); any other run keeps its status and reason."""

    def reply(done: dict[str, Any] | None, error: BaseException | None) -> CleanedUp:
        if error is not None:
            logger.error("the work after the run failed", exc_info=error)
        found = {**fields, **(done or {})}
        count = found.get("lock_violations_count") or 0
        if config.lock_violation == "fail" and status == "success" and count:
            return CleanedUp("failed", violation_message(found["lock_violations"], count), exit_code, found,
                             "lock_violation")
        return CleanedUp(status, message, exit_code, found, reason)

    return reply


def violation_message(listed: Sequence[str], count: int) -> str:
    """``lock violation: 2 paths changed outside the lock paths (a.txt, docs/b.md)``: the first few named."""
    shown = ", ".join(listed[:5]) + (", …" if count > 5 else "")
    return f"lock violation: {count} path{'s' if count != 1 else ''} changed outside the lock paths ({shown})"
