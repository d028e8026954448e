"""What a validated submission is (:class:`TaskRequest`, its :class:`Workspace`) and the operator's rules it was
checked by (:class:`SubmitRules`). The checking itself is in :mod:`host_runner.domain.submission`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from host_runner.domain.callback_hosts import HostAllowlist
from host_runner.domain.limits import TaskLimits
from host_runner.domain.names import DEFAULT_EXECUTION_MODE, DEFAULT_EXECUTOR
from host_runner.domain.sandbox_spec import SandboxSpec


@dataclass(frozen=True)
class Workspace:
    """Where a task works. Only the fields its execution mode needs are set."""

    project_id: int | str | None = None
    project_root: str | None = None
    lock_paths: tuple[str, ...] = ()
    worktree_path: str | None = None
    git_branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lock_paths"] = list(self.lock_paths)
        return {key: value for key, value in data.items() if value not in (None, [])}


@dataclass(frozen=True)
class TaskRequest:
    """A validated submission."""

    task_id: str
    run_id: str
    prompt: str
    execution_mode: str = DEFAULT_EXECUTION_MODE
    workspace: Workspace | None = None
    sandbox: SandboxSpec | None = None
    status_callback_url: str | None = None
    status_callback_token: str | None = field(default=None, repr=False)
    timeout_seconds: float = 600.0
    #: None until the supervisor pins it to the runner's default at submission.
    executor: str | None = None
    #: The agent executor's group (its one-at-a-time queue); see :func:`agent_group`.
    group: str | None = None
    session_id: str | None = None
    agent_input: dict[str, Any] | None = None
    #: Which events the callback URL gets: status changes always; ``progress`` too when asked (agent CLIs' messages,
    #: commands and file changes, coalesced).
    status_callback_events: tuple[str, ...] = ("status",)
    #: What the submission asked for in ``limits`` (at most the operator's maximum); None: the operator's.
    limits: TaskLimits | None = None


def agent_group(request: TaskRequest) -> str | None:
    """The group of an agent task: its ``group`` field, else ``workspace.project_id`` (as text)."""
    if request.group is not None:
        return request.group
    if request.workspace is not None and request.workspace.project_id is not None:
        return str(request.workspace.project_id)
    return None


@dataclass(frozen=True)
class SubmitRules:
    """What the operator allows a submission (built from the settings by ``Config.submit_rules``)."""

    default_timeout: float = 600.0
    #: The runner's executor: a task that names none runs it (and it decides whether a group is required).
    default_executor: str = DEFAULT_EXECUTOR
    #: The executors a task may name (HOST_RUNNER_ALLOWED_EXECUTORS); None: the default one alone.
    allowed_executors: tuple[str, ...] | None = None
    #: When not empty, the only host directories a sandbox may mount from (HOST_RUNNER_SANDBOX_MOUNT_ROOTS).
    sandbox_mount_roots: tuple[str, ...] = ()
    #: The runner's data directory: never mounted into a sandbox, like the host's system directories.
    sandbox_data_dir: str | os.PathLike[str] | None = None
    #: When set, the only hosts ``status_callback_url`` may name (HOST_RUNNER_CALLBACK_ALLOWED_HOSTS).
    callback_allowed_hosts: HostAllowlist | None = None
    #: The operator's maximum limits of a host task (HOST_RUNNER_TASK_MEMORY_MAX, _PIDS_MAX, _CPUS).
    max_limits: TaskLimits = TaskLimits()
