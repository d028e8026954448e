"""The execution modes: one module per mode (no_workspace, shared_workspace, isolated_worktree, docker_sandbox),
each providing one :class:`~host_runner.modes.base.ExecutionMode` (``MODE``), and this registry.

Everything that differs between modes is asked of the mode (:func:`mode_of`), never decided by comparing its
name. Importing this package registers each mode with host_runner.domain.seams, through which validation,
admission and the store reach it; and checks the registry against host_runner.domain.names.EXECUTION_MODES.
Adding a mode: a module here, its name in EXECUTION_MODES, a line in ``_MODES``, its tests.

May import: host_runner.domain, host_runner.ops, host_runner.run, host_runner.workspace, host_runner.agent,
host_runner.sandbox, host_runner.store (never host_runner.executors, the actors or the API).
"""

from __future__ import annotations

from collections.abc import Mapping

from host_runner.domain.names import EXECUTION_MODES
from host_runner.domain.request import TaskRequest
from host_runner.domain.seams import build_registry, register_mode
from host_runner.modes import docker_sandbox, isolated_worktree, no_workspace, shared_workspace
from host_runner.modes.base import ExecutionMode
from host_runner.ops.config import Config
from host_runner.store.sqlite import Store

#: The execution modes by name, in the order of EXECUTION_MODES.
MODES: Mapping[str, ExecutionMode] = build_registry(
    __name__, (no_workspace.MODE, shared_workspace.MODE, isolated_worktree.MODE, docker_sandbox.MODE),
    EXECUTION_MODES, register_mode,
)


def mode_named(name: str) -> ExecutionMode:
    """The execution mode ``name`` (KeyError if there is none: submissions are validated before)."""
    return MODES[name]


def mode_of(request: TaskRequest) -> ExecutionMode:
    """The execution mode of a submission."""
    return MODES[request.execution_mode]


def prepare_at_start(config: Config, store: Store, environment: Mapping[str, str]) -> Config:
    """At the runner's start, before any task is re-adopted or started: what each mode prepares (the returned
    config carries what they settled, such as the sandboxes' instance id)."""
    for mode in MODES.values():
        config = mode.prepare_at_start(config, store, environment)
    return config


__all__ = ["ExecutionMode", "MODES", "mode_named", "mode_of", "prepare_at_start"]
