"""Where the layers below :mod:`host_runner.modes` and :mod:`host_runner.executors` reach a mode or an executor.

Validating a submission (here in domain), admitting it (host_runner.workspace), loading it back (host_runner.store)
and checking the settings (host_runner.ops) each need something of the mode or executor a task names, yet those
packages may not import the registries, which are built on them. So the registries register each implementation
here when they are imported, under the part of its interface these layers use (:class:`ModeRules`,
:class:`ExecutorRules`), and those layers look it up by name. Every process that serves tasks imports the
registries (the API and the actors do); a lookup before that fails loudly, naming the package to import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from host_runner.domain.claims import Admission, Claim
from host_runner.domain.names import EXECUTION_MODES, EXECUTORS
from host_runner.domain.request import SubmitRules, TaskRequest, Workspace
from host_runner.domain.sandbox_spec import SandboxSpec


class Named(Protocol):
    """A registered implementation: its name is its key."""

    @property
    def name(self) -> str: ...


class ModeRules(Named, Protocol):
    """What validation, admission and the store ask of an execution mode."""

    @property
    def runs_executor(self) -> bool:
        """False when the mode runs its own command (a task's ``executor`` does not apply to it)."""

    def parse_workspace(self, raw: Any) -> Workspace | None:
        """The submission's ``workspace`` (``raw`` as given), checked as this mode requires it."""

    def parse_sandbox(self, raw: dict[str, Any] | None, rules: SubmitRules) -> SandboxSpec | None:
        """The submission's ``sandbox`` object (None if absent): parsed when the mode uses it, else ignored."""

    def load_sandbox(self, stored: dict[str, Any] | None) -> SandboxSpec | None:
        """A stored request's sandbox, rebuilt when the mode uses it (older rows may hold unvalidated ones)."""

    def claims(self, request: TaskRequest) -> tuple[Claim, ...]:
        """What an active task of this mode claims (may ask git; raises ValidationError naming the field)."""

    def admission(self, request: TaskRequest) -> Admission:
        """Its claims and the checks of the world outside the runner (may ask git; runs in a request thread)."""


class ExecutorRules(Named, Protocol):
    """What validation and the settings ask of an executor."""

    @property
    def needs_group(self) -> bool:
        """True when its tasks queue per group, so that a submission must give one (or a project id)."""

    @property
    def speaks_agent_protocol(self) -> bool:
        """True when its process reads the agent-runner protocol (the only one a submission's ``agent_input`` is for)."""

    def settings_problem(self, settings: Any) -> str | None:
        """What is missing from the runner's settings (a ``Config``) for this to be its default executor."""


Implementation = TypeVar("Implementation", bound=Named)


def build_registry(owner: str, implementations: Sequence[Implementation], names: tuple[str, ...],
                   register: Callable[[Implementation], None]) -> Mapping[str, Implementation]:
    """The registry of package ``owner``: its implementations by name, which must be exactly ``names`` in their
    order (ImportError otherwise: a name without a module, or a module without a name), each registered here."""
    registry = {item.name: item for item in implementations}
    if tuple(registry) != names:
        raise ImportError(f"{owner} registers {tuple(registry)}, host_runner.domain.names lists {names}")
    for item in implementations:
        register(item)
    return MappingProxyType(registry)


_modes: dict[str, ModeRules] = {}
_executors: dict[str, ExecutorRules] = {}


def register_mode(mode: ModeRules) -> None:
    """Called by :mod:`host_runner.modes` for each of its modes."""
    if mode.name not in EXECUTION_MODES:
        raise ValueError(f"{mode.name!r} is not in host_runner.domain.names.EXECUTION_MODES")
    _modes[mode.name] = mode


def register_executor(executor: ExecutorRules) -> None:
    """Called by :mod:`host_runner.executors` for each of its executors."""
    if executor.name not in EXECUTORS:
        raise ValueError(f"{executor.name!r} is not in host_runner.domain.names.EXECUTORS")
    _executors[executor.name] = executor


def mode_rules(name: str) -> ModeRules:
    """The registered execution mode ``name`` (one of EXECUTION_MODES)."""
    try:
        return _modes[name]
    except KeyError:
        raise LookupError(f"execution mode {name!r} is not registered (is host_runner.modes imported?)") from None


def executor_rules(name: str) -> ExecutorRules:
    """The registered executor ``name`` (one of EXECUTORS)."""
    try:
        return _executors[name]
    except KeyError:
        raise LookupError(f"executor {name!r} is not registered (is host_runner.executors imported?)") from None
