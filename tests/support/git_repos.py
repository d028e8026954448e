"""Real git repositories in temporary directories, and the isolated-worktree part of a submission, for the tests
of worktrees, of git failing under a task, and of shutdown."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git", "isolated", "make_repo", "worktree_list"]


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (an argv, never a shell) and return its stdout; a failure fails the test."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    """A repository with two commits on ``main`` (so that HEAD~1 is an older commit to put branches on)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Test"), ("user.email", "test@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)
    (root / "README.md").write_text("hello\n")
    (root / "old.txt").write_text("old\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print(1)\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "second")
    return root


def isolated(repo: Path, path: Path | str, branch: object, **body: object) -> dict[str, object]:
    """The fields of a submission that runs in its own worktree of ``repo`` at ``path`` on ``branch``."""
    workspace = {"project_id": 1, "project_root": str(repo), "worktree_path": str(path), "git_branch": branch}
    return {"execution_mode": "isolated-worktree", "workspace": workspace, **body}


def worktree_list(repo: Path) -> str:
    """git's own list of the worktrees of ``repo``: tests compare it before and after a task."""
    return git(repo, "worktree", "list", "--porcelain")
