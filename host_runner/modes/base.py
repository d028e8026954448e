"""What an execution mode is: :class:`ExecutionMode`, the one object each module of this package provides.

A mode owns everything that differs between modes: which ``workspace`` and ``sandbox`` a submission must give
(parsing), what a task claims and what is checked before it is admitted, which workspace its run gets, and how
its command starts: through the task's executor (``runs_executor``) or with a launcher of its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from host_runner.domain.claims import Admission, Claim
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import SubmitRules, TaskRequest, Workspace
from host_runner.domain.sandbox_spec import SandboxSpec
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError
from host_runner.run.launchers import AdoptedLauncher, Launcher
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor
from host_runner.store.sqlite import Store
from host_runner.workspace import interface
from host_runner.workspace.admission import lock_path_claims


class ExecutionMode(ABC):
    """One execution mode. Implements :class:`host_runner.domain.seams.ModeRules` (what validation, admission
    and the store ask of it) and what the actors and the API ask of it besides."""

    #: The mode's ``execution_mode`` value (one of host_runner.domain.names.EXECUTION_MODES).
    name: ClassVar[str]
    #: True when the task's executor runs the command; False when the mode starts it itself (:meth:`launcher`).
    runs_executor: ClassVar[bool] = True
    #: True when the API must answer a retry of a known run before admission looks at the world outside the
    #: runner (which the run itself may have changed since: its own worktree fills the path).
    checks_retry_before_admission: ClassVar[bool] = False

    # --- submission --------------------------------------------------------------------------------------------
    @abstractmethod
    def parse_workspace(self, raw: Any) -> Workspace | None:
        """The submission's ``workspace`` as this mode requires it."""

    def parse_sandbox(self, raw: dict[str, Any] | None, rules: SubmitRules) -> SandboxSpec | None:
        """The submission's ``sandbox``: ignored, like any field the mode does not use."""
        return None

    def load_sandbox(self, stored: dict[str, Any] | None) -> SandboxSpec | None:
        """A stored request's sandbox: none for a mode without one (older rows may hold a raw one)."""
        return None

    # --- admission ---------------------------------------------------------------------------------------------
    def claims(self, request: TaskRequest) -> tuple[Claim, ...]:
        """Its lock paths, if it gives any."""
        return lock_path_claims(request)

    def admission(self, request: TaskRequest) -> Admission:
        """Its claims; nothing outside the runner to check."""
        return Admission(self.claims(request))

    # --- running -----------------------------------------------------------------------------------------------
    @abstractmethod
    def workspace(self, request: TaskRequest, files: RunFiles, *, cleanup_worktree: bool = True,
                  prepared: Mapping[str, Any] | None = None) -> interface.Workspace:
        """The workspace of a run. ``prepared`` are the fields an earlier prepare recorded (an adopted run)."""

    def follow_up(self, request: TaskRequest, latest: Callable[[], TaskRecord | None]) -> dict[str, Any]:
        """Record fields of a new run that continues the task's newest earlier run (``latest()`` reads it; None: a
        new task); empty when nothing of that run carries over. Called in the supervisor's thread."""
        return {}

    def half_made(self, request: TaskRequest) -> dict[str, Any]:
        """What preparing a run may create outside the run directory (persisted before it is created, so that a
        runner stopped halfway can remove it at its next start); empty when nothing."""
        return {}

    def discard_half_made(self, request: TaskRequest, files: RunFiles, marker: Mapping[str, Any]) -> str | None:
        """At start, for a run whose preparation never finished: remove what ``marker`` names; say what was done."""
        return None

    def pinned_executor(self, request: TaskRequest, default: str) -> str:
        """The executor recorded with the task at submission (kept across restarts whatever the default becomes)."""
        return request.executor or default

    def launcher(self, config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                 environment: Mapping[str, str]) -> Launcher:
        """The launcher of a new run of a mode that starts its command itself (``runs_executor`` False)."""
        raise LaunchError(f"execution_mode {self.name} runs its task's executor")

    def adopted_launcher(self, config: Config, record: TaskRecord, alive: bool, files: RunFiles, reactor: Reactor,
                         environment: Mapping[str, str]) -> Launcher:
        """The launcher of a run an earlier runner started (``alive``: its process is still the one recorded)."""
        return AdoptedLauncher(record.pid, alive, files, reactor, config.kill_grace_seconds,
                               config.cgroup_request(record.task_id, record.run_id))

    def prepare_at_start(self, config: Config, store: Store, environment: Mapping[str, str]) -> Config:
        """At the runner's start, before any task is re-adopted or started (sandboxes sweep their containers)."""
        return config
