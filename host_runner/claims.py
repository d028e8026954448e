"""What a task claims for itself while active, so that no other task works on the same files."""

from __future__ import annotations

import os
from dataclasses import dataclass

from host_runner.models import TaskRequest


@dataclass(frozen=True)
class Claim:
    """A ``path`` (collides with itself, its parents and its children) or an exact ``name`` such as a branch.

    ``key`` is canonical (a real path, symlinks and ``..`` resolved); ``label`` says what it is in messages.
    """

    kind: str
    key: str
    label: str


def claims_for(request: TaskRequest) -> tuple[Claim, ...]:
    """The claims of a submission: its lock paths (shared-workspace)."""
    if request.workspace is None:
        return ()
    return tuple(Claim("path", os.path.realpath(path), "lock path") for path in request.workspace.lock_paths)
