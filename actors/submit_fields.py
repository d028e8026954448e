"""What a new run's record starts with besides the request (its ``extra`` and timeout), decided once at
submission by the supervisor, which owns the store: the agent group and session, an agent's stretched timeout,
the session a resumed agent CLI continues, and the earlier run an isolated-worktree follow-up continues."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from host_runner.agent.protocol import agent_timeout
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest, agent_group
from host_runner.executors import find_executor, needs_group, speaks_agent_protocol
from host_runner.modes import mode_of
from host_runner.ops.config import Config

__all__ = ["initial_fields"]


def initial_fields(request: TaskRequest, config: Config, latest: Callable[[], TaskRecord | None]
                   ) -> tuple[dict[str, Any], float]:
    """The new run's ``extra`` and timeout. ``request.executor`` is pinned; ``latest`` reads the task's newest
    earlier run (None for a new task), called only by a mode that continues it, so other submits skip that store
    read. Reads no file and runs no git (the supervisor's thread)."""
    extra: dict[str, Any] = {}
    timeout = request.timeout_seconds
    if needs_group(request.executor):
        extra = {"group": agent_group(request), "session_id": request.session_id}
    if speaks_agent_protocol(request.executor):  # never killed before its idle close: see agent_timeout
        timeout = agent_timeout(request.timeout_seconds, config)
        if timeout != request.timeout_seconds:
            extra["requested_timeout_seconds"] = request.timeout_seconds
    executor = find_executor(request.executor)
    if request.session_id and executor is not None and executor.resumes_sessions and mode_of(request).runs_executor:
        extra["resumed_session_id"] = request.session_id
    extra.update(mode_of(request).follow_up(request, latest))
    return extra, timeout
