"""What a task is: the names of the execution modes and executors (names), a validated submission and the
operator's rules (request), its validation (submission, with single fields in fields), the record of a run
(record), a sandbox's spec (sandbox_spec), what an active task claims (claims), which hosts callbacks may name
(callback_hosts), the domain's errors (errors), and the seams through which the layers below host_runner.modes
and host_runner.executors reach a mode or executor by name (seams).

Pure: no processes, no network, no database; validation may look at the file system (a project root must
exist, a sandbox mount must not reach the runner's data).

May import: nothing of the project outside host_runner.domain.
"""

from __future__ import annotations

from host_runner.domain.callback_hosts import NOT_ALLOWED, HostAllowlist, ip_literal, parse_allowed_hosts
from host_runner.domain.claims import Admission, Claim, worktree_claims
from host_runner.domain.errors import (
    Busy, Conflict, DiskLow, InputRefused, NotFound, QueueFull, ShuttingDown, StoreUnavailable, ValidationError,
)
from host_runner.domain.names import DEFAULT_EXECUTION_MODE, DEFAULT_EXECUTOR, EXECUTION_MODES, EXECUTORS
from host_runner.domain.record import ACTIVE_STATUSES, STATUSES, TERMINAL_STATUSES, TaskRecord, utc_now
from host_runner.domain.request import SubmitRules, TaskRequest, Workspace, agent_group
from host_runner.domain.sandbox_spec import Mount, SandboxSpec, check_again, parse_sandbox
from host_runner.domain.seams import ExecutorRules, ModeRules, executor_rules, mode_rules, register_executor, register_mode
from host_runner.domain.submission import MAX_PROMPT_BYTES, MAX_TIMEOUT_SECONDS, parse_task_request

__all__ = [
    "NOT_ALLOWED", "HostAllowlist", "ip_literal", "parse_allowed_hosts", "Admission", "Claim", "worktree_claims",
    "Conflict", "ShuttingDown", "StoreUnavailable", "ValidationError", "ACTIVE_STATUSES", "STATUSES",
    "Busy", "DiskLow", "InputRefused", "NotFound", "QueueFull",
    "TERMINAL_STATUSES", "TaskRecord", "utc_now", "Mount", "SandboxSpec", "check_again", "parse_sandbox",
    "DEFAULT_EXECUTION_MODE", "DEFAULT_EXECUTOR", "EXECUTION_MODES", "EXECUTORS", "ExecutorRules", "ModeRules",
    "executor_rules", "mode_rules", "register_executor", "register_mode", "MAX_PROMPT_BYTES", "MAX_TIMEOUT_SECONDS",
    "SubmitRules", "TaskRequest", "Workspace", "agent_group", "parse_task_request",
]
