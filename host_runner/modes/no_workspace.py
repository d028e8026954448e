"""``no-workspace``: the task works in a private empty scratch directory, removed afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host_runner.domain.fields import parse_workspace
from host_runner.domain.request import TaskRequest, Workspace
from host_runner.modes.base import ExecutionMode
from host_runner.run.process_group import RunFiles
from host_runner.workspace.workspaces import ScratchWorkspace


class NoWorkspace(ExecutionMode):
    """A workspace is optional (its project id names an agent's group; its lock paths are still claimed)."""

    name = "no-workspace"

    def parse_workspace(self, raw: Any) -> Workspace | None:
        return parse_workspace(raw, self.name)

    def workspace(self, request: TaskRequest, files: RunFiles, *, cleanup_worktree: bool = True,
                  prepared: Mapping[str, Any] | None = None) -> ScratchWorkspace:
        return ScratchWorkspace(files)


MODE = NoWorkspace()
