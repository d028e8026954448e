"""``docker-sandbox``: the task runs the image and command its ``sandbox`` names, in a container
(host_runner.sandbox); no executor applies. The docker client works in a scratch directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from host_runner.domain.errors import ValidationError
from host_runner.domain.fields import parse_workspace
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import SubmitRules, TaskRequest, Workspace
from host_runner.domain.sandbox_spec import SandboxSpec, parse_sandbox
from host_runner.modes.base import ExecutionMode
from host_runner.ops.config import Config
from host_runner.run.launchers import Launcher
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor
from host_runner.sandbox.containers import adopted_container_launcher, container_launcher
from host_runner.sandbox.sweep import prepare_sandboxes
from host_runner.store.sqlite import Store
from host_runner.workspace.workspaces import ScratchWorkspace

#: What a sandbox task records as its executor: the runner's default executor does not apply to it.
PINNED_EXECUTOR = "docker"


class DockerSandbox(ExecutionMode):
    """Requires a ``sandbox``; starts its container itself; sweeps this runner's orphaned containers at start."""

    name = "docker-sandbox"
    runs_executor = False

    def parse_workspace(self, raw: Any) -> Workspace | None:
        return parse_workspace(raw, self.name)

    def parse_sandbox(self, raw: dict[str, Any] | None, rules: SubmitRules) -> SandboxSpec | None:
        if raw is None:
            raise ValidationError("sandbox", f"is required for execution_mode {self.name}")
        return parse_sandbox(raw, rules.sandbox_mount_roots, rules.sandbox_data_dir)

    def load_sandbox(self, stored: dict[str, Any] | None) -> SandboxSpec | None:
        return SandboxSpec.from_json(stored) if stored else None

    def workspace(self, request: TaskRequest, files: RunFiles, *, cleanup_worktree: bool = True,
                  prepared: Mapping[str, Any] | None = None) -> ScratchWorkspace:
        return ScratchWorkspace(files)

    def pinned_executor(self, request: TaskRequest, default: str) -> str:
        return PINNED_EXECUTOR

    def launcher(self, config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                 environment: Mapping[str, str]) -> Launcher:
        return container_launcher(config, request, cwd, files, reactor, environment)

    def adopted_launcher(self, config: Config, record: TaskRecord, alive: bool, files: RunFiles, reactor: Reactor,
                         environment: Mapping[str, str]) -> Launcher:
        return adopted_container_launcher(config, record, alive, files, reactor, environment)

    def prepare_at_start(self, config: Config, store: Store, environment: Mapping[str, str]) -> Config:
        return prepare_sandboxes(config, store, environment, mode=self.name)


MODE = DockerSandbox()
