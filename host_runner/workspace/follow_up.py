"""An isolated-worktree follow-up: a new run of a task continues the work of its earlier run.

At submission (:func:`follow_up_fields`, pure, in the supervisor's thread) the new run records which run it
continues as ``worktree_follow_up``: that run's id, its branch, its final HEAD and its saved patch of
uncommitted work (``uncommitted.patch`` in its run directory, see :mod:`host_runner.workspace.worktrees`).
A run that saved nothing of its own (it failed before its worktree existed, or its saved work did not apply)
passes on what it was to continue, so nothing is skipped over.

At prepare (a helper thread): the worktree starts from that branch as it is now (its commits and any added since;
the recorded commit when the branch is gone) (:func:`follow_up_base`), then the patch is applied
(:func:`apply_saved_work`); a patch that no longer applies fails the run before its command starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.workspace import git
from host_runner.workspace.interface import WorkspaceError

__all__ = ["FOLLOW_UP_FIELD", "apply_saved_work", "follow_up_base", "follow_up_fields"]

#: The record field naming the earlier run a follow-up continues.
FOLLOW_UP_FIELD = "worktree_follow_up"


def follow_up_fields(request: TaskRequest, latest: TaskRecord | None) -> dict[str, Any]:
    """``{FOLLOW_UP_FIELD: {...}}`` when ``latest`` (the task's newest earlier run) worked in an isolated
    worktree of the same project; empty otherwise."""
    if latest is None or latest.execution_mode != request.execution_mode or latest.workspace is None:
        return {}
    root, earlier_root = request.workspace and request.workspace.project_root, latest.workspace.project_root
    if not root or not earlier_root or os.path.normpath(root) != os.path.normpath(earlier_root):
        return {}
    extra = latest.extra
    saved = extra.get("worktree_final_head") and extra.get("worktree_uncommitted_patch")
    if extra.get("failure_reason") == "setup" or not saved:
        carried = extra.get(FOLLOW_UP_FIELD)
        return {FOLLOW_UP_FIELD: carried} if carried else {}
    return {FOLLOW_UP_FIELD: {"run_id": latest.run_id, "branch": latest.workspace.git_branch,
                              "commit": extra["worktree_final_head"], "patch": extra["worktree_uncommitted_patch"]}}


def _refused(follow: dict[str, Any], text: str) -> WorkspaceError:
    return WorkspaceError(f"cannot continue run {follow.get('run_id')} of this task: {text}")


def follow_up_base(root: str, follow: dict[str, Any]) -> str:
    """The commit the follow-up's worktree starts from: the earlier run's branch now, else its final HEAD.
    Blocking (git): call it from a helper thread. Raises :class:`WorkspaceError` when neither exists."""
    try:
        tip = git.branch_tip(root, follow["branch"]) if follow.get("branch") else None
        if tip is not None:
            return tip
        return git.run_git(["rev-parse", "--verify", f"{follow['commit']}^{{commit}}"], cwd=root).stdout.strip()
    except git.GitError as exc:
        raise _refused(follow, f"its branch {follow.get('branch')} and its commit {follow.get('commit')} are "
                               f"gone ({exc.message})") from None


def apply_saved_work(path: str, follow: dict[str, Any]) -> str:
    """Apply the earlier run's saved uncommitted work in the new worktree ``path`` (all or nothing, as
    ``git apply`` does); return what was done, for the worktree log. Raises :class:`WorkspaceError` when the
    patch is gone or no longer applies."""
    patch = Path(str(follow.get("patch")))
    try:
        size = patch.stat().st_size
    except OSError as exc:
        raise _refused(follow, f"its saved uncommitted work {patch} cannot be read ({exc.strerror})") from None
    if size == 0:
        return f"run {follow.get('run_id')} left no uncommitted work"
    try:
        result = git.run_git(["apply", "--whitespace=nowarn", "--", str(patch)], cwd=path,
                             timeout=git.SLOW_TIMEOUT, check=False)
    except git.GitError as exc:
        raise _refused(follow, f"git apply failed: {exc.message}") from None
    if result.returncode != 0:
        raise _refused(follow, f"its saved uncommitted work {patch} no longer applies: {result.message}")
    return f"applied the uncommitted work of run {follow.get('run_id')} from {patch}"
