"""Admitting a submission: what it claims, and what the world outside the runner says about it.

:func:`admission_for` may ask git (a few milliseconds per call, each bounded by a timeout), so it runs in the
API's request thread, never in an actor: after the supervisor said the submission is not a retry of a known
run (a retry is answered with the existing record even when its own worktree now fills the path), and
before the supervisor asks the WorktreeRegistryActor to reserve the claims.
"""

from __future__ import annotations

import os

from host_runner.domain.claims import Admission, Claim, worktree_claims
from host_runner.domain.errors import ValidationError
from host_runner.domain.submission import TaskRequest
from host_runner.workspace import git
from host_runner.workspace.worktrees import inspect_worktree_request


def admission_for(request: TaskRequest) -> Admission:
    """Check the submission against the file system and git; raise ValidationError naming the field."""
    if request.execution_mode == "isolated-worktree":
        return inspect_worktree_request(request)
    return Admission(claims_for(request))


def claims_for(request: TaskRequest) -> tuple[Claim, ...]:
    """The claims of a submission: its lock paths (shared-workspace), or its worktree path and branch
    (isolated-worktree; the repository is identified by asking git for its common directory).

    Raises :class:`ValidationError` if the repository cannot be read.
    """
    workspace = request.workspace
    if workspace is None:
        return ()
    claims = tuple(Claim("path", os.path.realpath(path), "lock path") for path in workspace.lock_paths)
    if request.execution_mode == "isolated-worktree" and workspace.worktree_path and workspace.git_branch:
        assert workspace.project_root is not None
        try:
            common = git.common_dir(workspace.project_root)
        except git.GitError as exc:
            raise ValidationError("workspace.project_root", f"is not a git repository ({exc.message})") from None
        claims += worktree_claims(workspace.worktree_path, common, workspace.git_branch)
    return claims
