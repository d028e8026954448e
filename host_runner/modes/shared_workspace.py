"""``shared-workspace``: the task works in the project root itself; its lock paths keep other tasks off the same
files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host_runner.domain.fields import parse_workspace
from host_runner.domain.request import TaskRequest, Workspace
from host_runner.modes.base import ExecutionMode
from host_runner.run.process_group import RunFiles
from host_runner.workspace.workspaces import SharedWorkspace


class SharedWorkspaceMode(ExecutionMode):
    """Requires a project root and at least one lock path (its claims)."""

    name = "shared-workspace"

    def parse_workspace(self, raw: Any) -> Workspace | None:
        return parse_workspace(raw, self.name, required=True, lock_paths_required=True)

    def workspace(self, request: TaskRequest, files: RunFiles, *, cleanup_worktree: bool = True,
                  prepared: Mapping[str, Any] | None = None) -> SharedWorkspace:
        assert request.workspace is not None and request.workspace.project_root is not None
        return SharedWorkspace(request.workspace.project_root, files, request.workspace.lock_paths)


MODE = SharedWorkspaceMode()
