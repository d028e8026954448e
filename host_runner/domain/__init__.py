"""What a task is: the submission and its validation (submission), the record of a run (record), a sandbox's
spec (sandbox_spec), what an active task claims (claims), which hosts callbacks may name (callback_hosts), and
the domain's errors (errors).

Pure: no processes, no network, no database; validation may look at the file system (a project root must
exist, a sandbox mount must not reach the runner's data).

May import: nothing of the project outside host_runner.domain.
"""

from __future__ import annotations

from host_runner.domain.callback_hosts import NOT_ALLOWED, HostAllowlist, ip_literal, parse_allowed_hosts
from host_runner.domain.claims import Admission, Claim, worktree_claims
from host_runner.domain.errors import (
    Busy, Conflict, InputRefused, NotFound, ShuttingDown, StoreUnavailable, ValidationError,
)
from host_runner.domain.record import ACTIVE_STATUSES, STATUSES, TERMINAL_STATUSES, TaskRecord, utc_now
from host_runner.domain.sandbox_spec import Mount, SandboxSpec, check_again, parse_sandbox
from host_runner.domain.submission import (
    EXECUTION_MODES, EXECUTORS, MAX_PROMPT_BYTES, MAX_TIMEOUT_SECONDS, SubmitRules, TaskRequest, Workspace, agent_group,
    parse_task_request,
)

__all__ = [
    "NOT_ALLOWED", "HostAllowlist", "ip_literal", "parse_allowed_hosts", "Admission", "Claim", "worktree_claims",
    "Conflict", "ShuttingDown", "StoreUnavailable", "ValidationError", "ACTIVE_STATUSES", "STATUSES",
    "Busy", "InputRefused", "NotFound",
    "TERMINAL_STATUSES", "TaskRecord", "utc_now", "Mount", "SandboxSpec", "check_again", "parse_sandbox",
    "EXECUTION_MODES", "EXECUTORS", "MAX_PROMPT_BYTES", "MAX_TIMEOUT_SECONDS", "SubmitRules", "TaskRequest",
    "Workspace", "agent_group", "parse_task_request",
]
