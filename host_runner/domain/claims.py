"""What a task claims for itself while active, so that no other task works on the same files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from host_runner.workspace import git
from host_runner.domain.errors import ValidationError
from host_runner.domain.submission import TaskRequest


@dataclass(frozen=True)
class Claim:
    """A ``path`` (collides with itself, its parents and its children) or an exact ``name`` such as a branch.

    ``key`` is canonical (a real path, symlinks and ``..`` resolved); ``label`` says what it is in messages.
    """

    kind: str
    key: str
    label: str


@dataclass(frozen=True)
class Admission:
    """What the WorktreeRegistryActor needs to admit a submission: its claims, and ``verify``, a check of the
    world outside the runner run once no held claim collides (it raises Conflict; it must not block)."""

    claims: tuple[Claim, ...]
    verify: Callable[[], None] | None = None


def worktree_claims(worktree_path: str, common_dir: str, branch: str) -> tuple[Claim, ...]:
    """A worktree's path (a path claim, so it collides with lock paths and worktrees around or inside it)
    and its branch, which is a branch of one repository: the same name in two clones is two branches."""
    return (
        Claim("path", os.path.realpath(worktree_path), "worktree path"),
        Claim("branch", f"{branch} of {common_dir}", "branch"),
    )


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
