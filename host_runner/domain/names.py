"""The names of the execution modes and executors, and nothing else: light enough for the client to import.

Each name has one implementation, registered in :mod:`host_runner.modes` or :mod:`host_runner.executors`; those
registries check themselves against these tuples when imported, so a name cannot be listed here without a
module, nor a module exist without its name here. The order is the order help texts and the API document list.
"""

from __future__ import annotations

#: The execution modes (a task's ``execution_mode`` field).
EXECUTION_MODES = ("no-workspace", "shared-workspace", "isolated-worktree", "docker-sandbox")
#: The executors (``HOST_RUNNER_EXECUTOR`` and a task's optional ``executor`` field).
EXECUTORS = ("mock", "shell", "codex", "claude", "agent")
#: A submission that names no execution mode runs in this one.
DEFAULT_EXECUTION_MODE = EXECUTION_MODES[0]
#: The runner's executor when ``HOST_RUNNER_EXECUTOR`` is not set.
DEFAULT_EXECUTOR = EXECUTORS[0]
#: The executors whose tasks hold an agent session (a group, output frames, a session id): the CLI shows those
#: fields for them. The executors registry checks this against its executors' ``speaks_agent_protocol``.
AGENT_SESSION_EXECUTORS = frozenset({"agent"})

__all__ = ["EXECUTION_MODES", "EXECUTORS", "DEFAULT_EXECUTION_MODE", "DEFAULT_EXECUTOR", "AGENT_SESSION_EXECUTORS"]
