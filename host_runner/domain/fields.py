"""Checking single fields of a submission: strings, ids, absolute paths, and the ``workspace`` object.

The workspace parser knows no execution mode by name: a mode says what it requires (see
:mod:`host_runner.modes`), and the messages name the mode it was given.
"""

from __future__ import annotations

import os
import re
from typing import Any

from host_runner.domain.errors import ValidationError
from host_runner.domain.request import Workspace

#: Task and run ids become directory names, so they are restricted to a safe alphabet.
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:@+=-]{0,199}")


def require_string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """``body[name]`` as a string without NUL bytes (not blank when ``required``); None when absent and optional."""
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(name, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL bytes")
    if required and not value.strip():
        raise ValidationError(name, "must not be empty")
    return value


def require_id(body: dict[str, Any], name: str) -> str:
    """``body[name]`` as an id (:data:`ID_PATTERN`): it becomes a directory name."""
    value = require_string(body, name)
    assert value is not None
    if not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            name, "must be 1-200 characters of letters, digits and . _ : @ + = -, not starting with . or -"
        )
    return value


def absolute_path(value: Any, name: str) -> str:
    """``value`` as an absolute path (the field is ``name`` in messages)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "must be a non-empty string")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL bytes")
    if not os.path.isabs(value):
        raise ValidationError(name, "must be an absolute path")
    return value


def is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _lock_paths(raw: Any, project_root: str | None) -> list[str]:
    lock_paths: list[str] = []
    if raw is None:
        return lock_paths
    if not isinstance(raw, list):
        raise ValidationError("workspace.lock_paths", "must be a list of absolute paths")
    real_root = os.path.realpath(project_root) if project_root else None
    for index, item in enumerate(raw):
        name = f"workspace.lock_paths[{index}]"
        path = absolute_path(item, name)
        if real_root is None:
            raise ValidationError("workspace.project_root", "is required when lock_paths are given")
        # realpath resolves symlinks and '..', so neither can smuggle a lock outside the project.
        if not is_within(os.path.realpath(path), real_root):
            raise ValidationError(name, "is outside workspace.project_root")
        lock_paths.append(path)
    return lock_paths


def parse_workspace(raw: Any, mode: str, *, required: bool = False, lock_paths_required: bool = False,
                    worktree: bool = False) -> Workspace | None:
    """The ``workspace`` of a submission in execution mode ``mode``, which may require it (and its project root),
    at least one lock path, or a worktree (``worktree_path`` and ``git_branch``); the other fields are optional."""
    if raw is None:
        if required:
            raise ValidationError("workspace", f"is required for execution_mode {mode}")
        return None
    if not isinstance(raw, dict):
        raise ValidationError("workspace", "must be an object")
    project_id = raw.get("project_id")
    if project_id is not None and (isinstance(project_id, bool) or not isinstance(project_id, (int, str))):
        raise ValidationError("workspace.project_id", "must be an integer or a string")
    project_root = raw.get("project_root")
    if project_root is not None or required:
        if project_root is None:
            raise ValidationError("workspace.project_root", f"is required for execution_mode {mode}")
        project_root = absolute_path(project_root, "workspace.project_root")
        if not os.path.isdir(project_root):
            raise ValidationError("workspace.project_root", "is not an existing directory")
    lock_paths = _lock_paths(raw.get("lock_paths"), project_root)
    if lock_paths_required and not lock_paths:
        raise ValidationError("workspace.lock_paths", f"must list at least one path for {mode}")

    worktree_path = raw.get("worktree_path")
    git_branch = raw.get("git_branch")
    if worktree:
        worktree_path = absolute_path(worktree_path, "workspace.worktree_path")
        if not isinstance(git_branch, str) or not git_branch.strip():
            raise ValidationError("workspace.git_branch", f"is required for execution_mode {mode}")
        if "\x00" in git_branch:
            raise ValidationError("workspace.git_branch", "must not contain NUL bytes")
        if git_branch.startswith("-"):  # git would read it as an option
            raise ValidationError("workspace.git_branch", "must not start with '-'")
        # What needs git (a repository, a free path, a branch name git accepts) is checked by the mode's
        # admission once the submission is known not to be a retry.
    else:
        worktree_path = worktree_path if isinstance(worktree_path, str) else None
        git_branch = git_branch if isinstance(git_branch, str) else None
    return Workspace(
        project_id=project_id,
        project_root=project_root,
        lock_paths=tuple(lock_paths),
        worktree_path=worktree_path,
        git_branch=git_branch,
    )
