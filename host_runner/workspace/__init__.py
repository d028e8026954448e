"""Where a task works: the workspace kinds (interface; workspaces: scratch and shared; worktrees: isolated git
worktrees), git itself (git), and admitting a submission, which may ask git what it claims (admission).

May import: host_runner.domain, host_runner.ops, host_runner.run (a scratch directory and a worktree's log are
a run's files).
"""

from __future__ import annotations

from host_runner.workspace.admission import admission_for, claims_for
from host_runner.workspace.interface import Workspace, WorkspaceError
from host_runner.workspace.workspaces import workspace_for
from host_runner.workspace.worktrees import WorktreeWorkspace, inspect_worktree_request

__all__ = [
    "admission_for", "claims_for", "Workspace", "WorkspaceError", "workspace_for", "WorktreeWorkspace",
    "inspect_worktree_request",
]
