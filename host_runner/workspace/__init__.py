"""Where a task works: the workspace kinds (interface; workspaces: scratch and shared; worktrees: isolated git
worktrees), git itself (git), what a shared-workspace run changed outside its lock paths (lock_check), and
admitting a submission, which may ask git what it claims (admission). Which kind a run gets, and what it claims,
is its execution mode's choice (host_runner.modes, reached by admission through host_runner.domain.seams).

May import: host_runner.domain, host_runner.ops, host_runner.run (a scratch directory and a worktree's log are
a run's files).
"""

from __future__ import annotations

from host_runner.workspace.admission import admission_for, claims_for, lock_path_claims, worktree_request_claims
from host_runner.workspace.interface import Workspace, WorkspaceError
from host_runner.workspace.workspaces import ScratchWorkspace, SharedWorkspace
from host_runner.workspace.worktrees import WorktreeWorkspace, inspect_worktree_request

__all__ = [
    "admission_for", "claims_for", "lock_path_claims", "worktree_request_claims", "Workspace", "WorkspaceError",
    "ScratchWorkspace", "SharedWorkspace", "WorktreeWorkspace", "inspect_worktree_request",
]
