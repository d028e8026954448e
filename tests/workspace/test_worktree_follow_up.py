"""Isolated-worktree follow-ups with real git repositories: a new run of a task continues in a worktree made
from the branch the earlier run left, with that run's saved uncommitted work applied; a patch that no longer
applies fails the run (``setup``) before its command starts, and the next run still continues the last run that
saved work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.git_repos import git, isolated, make_repo
from support.runner import Runner, shell_runner

# The shell executor runs the prompt as a script (the tests' stand-in for an agent working in the worktree).
SCRIPT = 'eval "$HOST_RUNNER_PROMPT"'
FIRST_TURN = (
    "git -c user.name=T -c user.email=t@example.com commit -q --allow-empty -m 'turn 1' && "
    "echo committed > committed.txt && git add committed.txt && "
    "git -c user.name=T -c user.email=t@example.com commit -q -m 'turn 1 file' && "
    "echo draft > draft.txt && echo edited >> README.md"
)
SECOND_TURN = "cat committed.txt draft.txt README.md && git log --format=%s -n 2 && touch second-ran"


def submit(runner: Runner, repo: Path, tmp_path: Path, run_id: str, prompt: str, branch: str = "agent/t1") -> None:
    path = tmp_path / f"wt-{run_id}"
    result = runner.submit(task_id="t1", run_id=run_id, prompt=prompt, **isolated(repo, path, branch))
    assert result.status_code == 202, result.json


def run_turn(runner: Runner, repo: Path, tmp_path: Path, run_id: str, prompt: str,
             branch: str = "agent/t1") -> dict[str, Any]:
    """Submit run ``run_id`` of task t1 and return its record once it ended."""
    submit(runner, repo, tmp_path, run_id, prompt, branch)
    record = runner.wait_status("t1", "success", "failed", timeout=60)
    assert record["run_id"] == run_id, record
    return record


def first_turn(make_runner: Any, tmp_path: Path) -> tuple[Runner, Path, dict[str, Any]]:
    """A repository, a runner, and the record of run-1 (a commit, uncommitted edits and an untracked file)."""
    repo = make_repo(tmp_path / "repo")
    runner = shell_runner(make_runner, SCRIPT)
    first = run_turn(runner, repo, tmp_path, "run-1", FIRST_TURN)
    assert first["status"] == "success", first
    return runner, repo, first


def test_a_follow_up_keeps_the_commits_and_the_uncommitted_work(make_runner, tmp_path: Path):
    runner, repo, first = first_turn(make_runner, tmp_path)
    assert "worktree_follow_up" not in first
    assert sorted(first["worktree_changed_files"]) == ["README.md", "committed.txt", "draft.txt"]

    second = run_turn(runner, repo, tmp_path, "run-2", SECOND_TURN)
    assert second["run_id"] == "run-2" and second["status"] == "success", second
    assert second["stdout"] == "committed\ndraft\nhello\nedited\nturn 1 file\nturn 1\n"
    assert second["worktree_follow_up"] == {"run_id": "run-1", "branch": "agent/t1",
                                            "commit": first["worktree_final_head"],
                                            "patch": first["worktree_uncommitted_patch"]}
    assert second["worktree_base_commit"] == first["worktree_final_head"]
    # run-2's own saved work: the first turn's uncommitted files and what it added, on the same branch
    assert sorted(second["worktree_changed_files"]) == ["README.md", "draft.txt", "second-ran"]
    assert git(repo, "rev-parse", "agent/t1").strip() == first["worktree_final_head"]


def test_a_follow_up_on_another_branch_starts_from_the_earlier_branch(make_runner, tmp_path: Path):
    runner, repo, first = first_turn(make_runner, tmp_path)
    second = run_turn(runner, repo, tmp_path, "run-2", SECOND_TURN, branch="agent/t1-turn2")
    assert second["status"] == "success", second
    assert second["stdout"].startswith("committed\ndraft\nhello\nedited\n")
    assert git(repo, "rev-parse", "agent/t1-turn2").strip() == first["worktree_final_head"]


def test_a_patch_that_no_longer_applies_fails_the_run_before_it_starts(make_runner, tmp_path: Path):
    runner, repo, first = first_turn(make_runner, tmp_path)
    # Between the turns somebody commits a conflicting README.md onto the task's branch.
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", str(other), "agent/t1")
    (other / "README.md").write_text("rewritten\n")
    git(other, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-am", "conflict")
    conflicting = git(other, "rev-parse", "HEAD").strip()
    git(repo, "worktree", "remove", str(other))

    second = run_turn(runner, repo, tmp_path, "run-2", SECOND_TURN)
    assert second["status"] == "failed" and second["failure_reason"] == "setup", second
    assert second["message"].startswith("cannot continue run run-1 of this task: its saved uncommitted work")
    assert "no longer applies" in second["message"]
    assert not (tmp_path / "wt-run-2").exists() and second["worktree_cleanup_succeeded"] is True
    assert "second-ran" not in (second.get("worktree_changed_files") or [])  # the command never ran
    assert git(repo, "rev-parse", "agent/t1").strip() == conflicting  # the branch is left as it was

    # Once the branch is back where run-1 left it, the next run continues run-1 (not the failed run-2).
    git(repo, "branch", "-f", "agent/t1", first["worktree_final_head"])
    third = run_turn(runner, repo, tmp_path, "run-3", SECOND_TURN)
    assert third["status"] == "success", third
    assert third["worktree_follow_up"]["run_id"] == "run-1"
    assert third["stdout"].startswith("committed\ndraft\nhello\nedited\n")


def test_a_run_of_another_task_or_mode_starts_fresh(make_runner, tmp_path: Path):
    runner, repo, _ = first_turn(make_runner, tmp_path)
    result = runner.submit(task_id="t2", prompt="ls", **isolated(repo, tmp_path / "wt-t2", "agent/t2"))
    assert result.status_code == 202
    other = runner.wait_status("t2", "success", "failed", timeout=60)
    assert other["status"] == "success" and "worktree_follow_up" not in other
    assert "draft.txt" not in other["stdout"] and "committed.txt" not in other["stdout"]
