"""The executors: one module per executor (mock, shell, codex, claude, agent), each providing one
:class:`~host_runner.executors.base.Executor` (``EXECUTOR``), and this registry.

Everything that differs between executors is asked of the executor (:func:`executor_named`), never decided by
comparing its name. Importing this package registers each executor with host_runner.domain.seams, through which
validation and the settings reach it; and checks the registry against host_runner.domain.names.EXECUTORS.
Adding an executor: a module here, its name in EXECUTORS, a line in ``_EXECUTORS``, its tests.

May import: host_runner.domain, host_runner.ops, host_runner.run, host_runner.workspace, host_runner.agent,
host_runner.agent_cli, host_runner.sandbox, host_runner.store (never host_runner.modes, the actors or the API).
"""

from __future__ import annotations

from collections.abc import Mapping

from host_runner.domain.names import AGENT_SESSION_EXECUTORS, EXECUTORS
from host_runner.domain.seams import build_registry, register_executor
from host_runner.executors import agent, claude, codex, mock, shell
from host_runner.executors.base import Executor
from host_runner.run.commands import LaunchError

#: The executors by name, in the order of EXECUTORS.
EXECUTORS_BY_NAME: Mapping[str, Executor] = build_registry(
    __name__, (mock.EXECUTOR, shell.EXECUTOR, codex.EXECUTOR, claude.EXECUTOR, agent.EXECUTOR), EXECUTORS,
    register_executor,
)
if {e.name for e in EXECUTORS_BY_NAME.values() if e.speaks_agent_protocol} != AGENT_SESSION_EXECUTORS:
    raise ImportError("host_runner.domain.names.AGENT_SESSION_EXECUTORS disagrees with the executors")


def find_executor(name: str | None) -> Executor | None:
    """The executor ``name``, or None (a record's executor may name none: a sandbox run records ``docker``)."""
    return EXECUTORS_BY_NAME.get(name) if name is not None else None


def executor_named(name: str | None) -> Executor:
    """The executor that starts a task's process; :class:`LaunchError` if ``name`` is not one."""
    executor = find_executor(name)
    if executor is None:
        raise LaunchError(f"executor {name!r} does not start a process")
    return executor


def speaks_agent_protocol(name: str | None) -> bool:
    """True if tasks of executor ``name`` run under the agent TaskActor and take follow-up messages."""
    executor = find_executor(name)
    return executor is not None and executor.speaks_agent_protocol


def needs_group(name: str | None) -> bool:
    """True if tasks of executor ``name`` queue per group."""
    executor = find_executor(name)
    return executor is not None and executor.needs_group


__all__ = ["EXECUTORS_BY_NAME", "Executor", "executor_named", "find_executor", "needs_group", "speaks_agent_protocol"]
