"""What a task claims for itself while active, so that no other task works on the same files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


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
