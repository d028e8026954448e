"""Admitting a submission: what it claims, and what the world outside the runner says about it.

:func:`admission_for` may ask git (a few milliseconds per call, each bounded by a timeout), so it runs in the
API's request thread, never in an actor: after the supervisor said the submission is not a retry of a known
run (a retry is answered with the existing record even when its own worktree now fills the path), and
before the supervisor asks the WorktreeRegistryActor to reserve the claims.

What a submission claims depends on its execution mode, so both functions ask the mode (registered by
host_runner.modes through host_runner.domain.seams); the pieces modes are made of are the other functions here.
"""

from __future__ import annotations

import os

from host_runner.domain.claims import Admission, Claim, worktree_claims
from host_runner.domain.errors import ValidationError
from host_runner.domain.request import TaskRequest
from host_runner.domain.seams import mode_rules
from host_runner.workspace import git


def admission_for(request: TaskRequest) -> Admission:
    """Check the submission against the file system and git; raise ValidationError naming the field."""
    return mode_rules(request.execution_mode).admission(request)


def claims_for(request: TaskRequest) -> tuple[Claim, ...]:
    """The claims of a submission, as its execution mode sees them.

    Raises :class:`ValidationError` if the repository of a worktree cannot be read.
    """
    return mode_rules(request.execution_mode).claims(request)


def lock_path_claims(request: TaskRequest) -> tuple[Claim, ...]:
    """The submission's lock paths (any mode may give them; shared-workspace must)."""
    workspace = request.workspace
    if workspace is None:
        return ()
    return tuple(Claim("path", os.path.realpath(path), "lock path") for path in workspace.lock_paths)


def worktree_request_claims(request: TaskRequest) -> tuple[Claim, ...]:
    """The lock paths, then the worktree path and branch of a worktree submission (the repository is identified
    by asking git for its common directory)."""
    claims = lock_path_claims(request)
    workspace = request.workspace
    if workspace is not None and workspace.worktree_path and workspace.git_branch:
        assert workspace.project_root is not None
        try:
            common = git.common_dir(workspace.project_root)
        except git.GitError as exc:
            raise ValidationError("workspace.project_root", f"is not a git repository ({exc.message})") from None
        claims += worktree_claims(workspace.worktree_path, common, workspace.git_branch)
    return claims
