"""``isolated-worktree``: the task works in a git worktree of its own, on its own branch, created for the run
and removed after it (its work saved on the branch). A new run of the same task continues where the earlier
one stopped (host_runner/workspace/follow_up.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from host_runner.domain.claims import Admission, Claim
from host_runner.domain.fields import parse_workspace
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest, Workspace
from host_runner.modes.base import ExecutionMode
from host_runner.run.process_group import RunFiles
from host_runner.workspace.admission import worktree_request_claims
from host_runner.workspace.follow_up import follow_up_fields
from host_runner.workspace.worktrees import WorktreeWorkspace, inspect_worktree_request


class IsolatedWorktree(ExecutionMode):
    """Requires a project root (a git repository), a worktree path and a branch; claims the path and the branch,
    and asks git whether they are free before admission."""

    name = "isolated-worktree"
    checks_retry_before_admission = True

    def parse_workspace(self, raw: Any) -> Workspace | None:
        return parse_workspace(raw, self.name, required=True, worktree=True)

    def claims(self, request: TaskRequest) -> tuple[Claim, ...]:
        return worktree_request_claims(request)

    def admission(self, request: TaskRequest) -> Admission:
        return inspect_worktree_request(request)

    def workspace(self, request: TaskRequest, files: RunFiles, *, cleanup_worktree: bool = True,
                  prepared: Mapping[str, Any] | None = None) -> WorktreeWorkspace:
        return WorktreeWorkspace(request, files, cleanup_enabled=cleanup_worktree, prepared=prepared)

    def follow_up(self, request: TaskRequest, latest: Callable[[], TaskRecord | None]) -> dict[str, Any]:
        return follow_up_fields(request, latest())

    def half_made(self, request: TaskRequest) -> dict[str, Any]:
        workspace = request.workspace
        assert workspace is not None and workspace.worktree_path
        return {"worktree_path": os.path.realpath(workspace.worktree_path), "git_branch": workspace.git_branch}

    def discard_half_made(self, request: TaskRequest, files: RunFiles, marker: Mapping[str, Any]) -> str | None:
        return WorktreeWorkspace(request, files).discard_unfinished()


MODE = IsolatedWorktree()
