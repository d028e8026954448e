"""isolated-worktree: each task runs in its own git worktree on its own branch, collisions answer 409, the work
is saved before the worktree is removed, and a failed setup leaves the repository as it was.

Every test works on real repositories in temporary directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from host_runner.ops.config import load_config
from support.git_repos import git, isolated, make_repo, worktree_list
from support.receivers import CallbackReceiver
from support.runner import Runner, shell_runner
from support.waiting import wait_for


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def head(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", rev).strip()


def assert_removed(record: dict, path: Path, repo: Path, before: str) -> None:
    assert record["worktree_cleanup_attempted"] is True, record
    assert record["worktree_cleanup_succeeded"] is True, record
    assert record["worktree_cleanup_message"] == f"removed {os.path.realpath(path)}"
    assert not path.exists()
    assert worktree_list(repo) == before


# --- running in the worktree --------------------------------------------------------------------------------
def test_task_runs_in_its_worktree_on_its_branch_and_the_worktree_is_removed(
        make_runner, repo: Path, tmp_path: Path, receiver: CallbackReceiver):
    runner = shell_runner(make_runner, "pwd -P; git rev-parse --abbrev-ref HEAD; git rev-parse HEAD")
    before = worktree_list(repo)
    path = tmp_path / "worktrees" / "one"
    result = runner.submit(task_id="wt-1", status_callback_url=receiver.url, **isolated(repo, path, "feature/one"))
    assert result.status_code == 202, result.text
    final = runner.wait_status("wt-1")
    assert final["status"] == "success", final
    base = head(repo)
    assert final["stdout"].splitlines() == [os.path.realpath(path), "feature/one", base]
    assert final["worktree_base_commit"] == base
    assert final["worktree_final_head"] == base
    assert final["worktree_commits"] == 0
    assert final["worktree_changed_files"] == [] and final["worktree_changed_files_count"] == 0
    assert final["worktree_previous_branch_tip"] is None
    assert_removed(final, path, repo, before)
    assert head(repo, "feature/one") == base  # the branch stays: it holds whatever the task committed
    # the terminal callback carries the cleanup fields too
    events = wait_for(lambda: len(receiver.for_task("wt-1")) == 2 and receiver.for_task("wt-1"))
    terminal = events[-1].body
    assert terminal["status"] == "success"
    assert terminal["worktree_cleanup_attempted"] is True
    assert terminal["worktree_cleanup_succeeded"] is True
    assert terminal["worktree_cleanup_message"] == final["worktree_cleanup_message"]


AGENT_WORK = (
    "echo committed > committed.txt && git add committed.txt && git commit -q -m 'agent commit' && "
    "echo changed >> README.md && rm old.txt && mkdir notes && echo untracked > notes/todo.txt && "
    "printf '\\000\\001\\002' > data.bin"
)


def assert_work_applied(tree: Path) -> None:
    assert (tree / "committed.txt").read_text() == "committed\n"
    assert (tree / "README.md").read_text() == "hello\nchanged\n"
    assert not (tree / "old.txt").exists()
    assert (tree / "notes" / "todo.txt").read_text() == "untracked\n"
    assert (tree / "data.bin").read_bytes() == b"\0\1\2"


def test_work_is_saved_as_patches_that_apply_with_git_apply(make_runner, repo: Path, tmp_path: Path):
    runner = shell_runner(make_runner, AGENT_WORK)
    before = worktree_list(repo)
    path = tmp_path / "wt-work"
    runner.submit(task_id="work", **isolated(repo, path, "agent/work"))
    final = runner.wait_status("work")
    assert final["status"] == "success", final
    base = final["worktree_base_commit"]
    assert base == head(repo)
    assert final["worktree_final_head"] == head(repo, "agent/work") != base
    assert final["worktree_commits"] == 1
    assert sorted(final["worktree_changed_files"]) == [
        "README.md", "committed.txt", "data.bin", "notes/todo.txt", "old.txt"]
    assert final["worktree_changed_files_count"] == 5
    assert_removed(final, path, repo, before)
    run_dir = Path(final["logs"]["dir"])
    assert final["worktree_patch"] == str(run_dir / "worktree.patch")
    assert final["worktree_uncommitted_patch"] == str(run_dir / "uncommitted.patch")
    assert "work saved" in (run_dir / "worktree.log").read_text()

    # The README's recipe: everything the task did, committed or not, applies on the base commit ...
    recover = tmp_path / "recover"
    git(repo, "worktree", "add", "-q", "--detach", str(recover), base)
    git(recover, "apply", "--index", final["worktree_patch"])
    assert_work_applied(recover)
    git(repo, "worktree", "remove", "--force", str(recover))
    # ... and what it left uncommitted applies on its branch, which keeps its commits.
    git(repo, "worktree", "add", "-q", str(recover), "agent/work")
    git(recover, "apply", final["worktree_uncommitted_patch"])
    assert_work_applied(recover)
    git(repo, "worktree", "remove", "--force", str(recover))
    assert "committed.txt" not in Path(final["worktree_uncommitted_patch"]).read_text()


# --- cleanup on every terminal path ------------------------------------------------------------------------
@pytest.mark.parametrize("ending", ["failure", "timeout", "cancel"])
def test_work_is_saved_and_the_worktree_removed_on_every_ending(
        make_runner, repo: Path, tmp_path: Path, receiver: CallbackReceiver, ending: str):
    script = "echo work > work.txt; exit 3" if ending == "failure" else "echo work > work.txt; sleep 1000"
    runner = shell_runner(make_runner, script)
    before = worktree_list(repo)
    path = tmp_path / "wt-end"
    extra = {"timeout_seconds": 1} if ending == "timeout" else {}
    runner.submit(task_id="ending", status_callback_url=receiver.url, **isolated(repo, path, "ending", **extra))
    if ending == "cancel":
        wait_for(lambda: (path / "work.txt").exists(), what="the task to write its file")
        assert runner.cancel("ending").json["status"] == "canceled"
    final = runner.wait_status("ending")
    expected = {"failure": ("failed", "exited with code 3"), "timeout": ("failed", "timed out after 1 s"),
                "cancel": ("canceled", "canceled by api")}[ending]
    assert (final["status"], final["message"]) == expected
    assert final["worktree_changed_files"] == ["work.txt"]
    assert "+work" in Path(final["worktree_patch"]).read_text()
    assert_removed(final, path, repo, before)
    terminal = wait_for(lambda: len(receiver.for_task("ending")) == 2 and receiver.for_task("ending"))[-1].body
    assert terminal["status"] == expected[0]
    assert (terminal["worktree_cleanup_attempted"], terminal["worktree_cleanup_succeeded"]) == (True, True)


def test_cleanup_can_be_disabled_and_the_kept_worktree_holds_its_branch(make_runner, repo: Path, tmp_path: Path):
    assert load_config({"HOST_RUNNER_CLEANUP_WORKTREE": "false"}).cleanup_worktree is False
    runner = shell_runner(make_runner, "echo kept > kept.txt", cleanup_worktree=False)
    path = tmp_path / "wt-kept"
    runner.submit(task_id="kept", **isolated(repo, path, "kept"))
    final = runner.wait_status("kept")
    assert final["status"] == "success"
    assert final["worktree_cleanup_attempted"] is False
    assert final["worktree_cleanup_succeeded"] is None
    assert "HOST_RUNNER_CLEANUP_WORKTREE=false" in final["worktree_cleanup_message"]
    assert (path / "kept.txt").read_text() == "kept\n"
    assert f"worktree {os.path.realpath(path)}\n" in worktree_list(repo)
    assert final["worktree_changed_files"] == ["kept.txt"]  # the work is saved all the same
    # the kept worktree still has the branch checked out: git would refuse it, so the runner does too
    again = runner.submit(task_id="again", **isolated(repo, tmp_path / "wt-other", "kept"))
    assert again.status_code == 409, again.text
    assert "already checked out" in again.json["detail"]
    git(repo, "worktree", "remove", "--force", str(path))


def test_immediate_resubmission_with_the_same_branch_and_path_succeeds(make_runner, repo: Path, tmp_path: Path):
    runner = shell_runner(make_runner, "echo $HOST_RUNNER_RUN_ID > run.txt")
    before = worktree_list(repo)
    path = tmp_path / "wt-again"
    for round_ in range(5):
        task_id = f"again-{round_}"
        result = runner.submit(task_id=task_id, **isolated(repo, path, "reused"))
        assert result.status_code == 202, result.text
        assert runner.wait_status(task_id)["status"] == "success"
        # the same task with a new run, at once
        result = runner.submit(task_id=task_id, run_id="run-2", **isolated(repo, path, "reused"))
        assert result.status_code == 202, result.text
        assert_removed(runner.wait_status(task_id), path, repo, before)


# --- collisions --------------------------------------------------------------------------------------------
@pytest.fixture
def queued_holder(make_runner, repo: Path, tmp_path: Path) -> Runner:
    """A runner whose only slot is taken by a blocker, with task ``holder`` queued on branch ``held`` at
    ``wt/held`` (queued tasks hold their claims; its worktree does not exist yet, so only claims can collide)."""
    runner = shell_runner(make_runner, "sleep 1000", max_concurrency=1)
    assert runner.submit(task_id="blocker").status_code == 202
    result = runner.submit(task_id="holder", **isolated(repo, tmp_path / "wt" / "held", "held"))
    assert result.status_code == 202 and result.json["status"] == "queued", result.text
    return runner


def _spelling(case: str, repo: Path, tmp: Path) -> dict:
    held = tmp / "wt" / "held"
    if case == "same branch":
        return isolated(repo, tmp / "wt" / "other", "held")
    if case == "same path":
        return isolated(repo, held, "other")
    if case == "same path through a symlink":
        (tmp / "alias").symlink_to(tmp / "wt", target_is_directory=True)
        return isolated(repo, tmp / "alias" / "held", "other")
    if case == "same path through ..":
        return isolated(repo, f"{tmp}/wt/x/../held", "other")
    if case == "inside the held worktree":
        return isolated(repo, held / "nested", "other")
    if case == "around the held worktree":
        return isolated(repo, tmp / "wt", "other")
    if case == "same branch, repository through a symlink":
        (tmp / "repo-alias").symlink_to(repo, target_is_directory=True)
        return isolated(tmp / "repo-alias", tmp / "wt" / "other", "held")
    if case == "same branch, repository through ..":
        return isolated(Path(f"{repo}/src/.."), tmp / "wt" / "other", "held")
    if case == "same branch, repository through one of its linked worktrees":
        git(repo, "worktree", "add", "-q", "--detach", str(tmp / "linked"))
        return isolated(tmp / "linked", tmp / "wt" / "other", "held")
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "same branch", "same path", "same path through a symlink", "same path through ..", "inside the held worktree",
    "around the held worktree", "same branch, repository through a symlink", "same branch, repository through ..",
    "same branch, repository through one of its linked worktrees",
])
def test_paths_and_branches_held_by_active_tasks_answer_409_naming_the_holder(
        queued_holder: Runner, repo: Path, tmp_path: Path, case: str):
    result = queued_holder.submit(task_id="second", **_spelling(case, repo, tmp_path))
    assert result.status_code == 409, result.text
    assert result.json["holder_task_id"] == "holder"
    assert "holder" in result.json["detail"]


def test_a_path_filled_by_a_running_task_answers_409_naming_it_not_422(make_runner, repo: Path, tmp_path: Path):
    """The running holder's worktree fills the path: the reservation is checked before the path's emptiness."""
    runner = shell_runner(make_runner, "sleep 1000")
    path = tmp_path / "wt" / "busy"
    assert runner.submit(task_id="first", **isolated(repo, path, "first")).status_code == 202
    runner.wait_status("first", "running")
    assert path.is_dir() and os.listdir(path)
    result = runner.submit(task_id="second", **isolated(repo, path, "second"))
    assert result.status_code == 409, result.text
    assert result.json["holder_task_id"] == "first"


def test_a_lock_path_around_a_worktree_collides(queued_holder: Runner, repo: Path, tmp_path: Path):
    shared = {"execution_mode": "shared-workspace",
              "workspace": {"project_root": str(tmp_path), "lock_paths": [str(tmp_path / "wt")]}}
    result = queued_holder.submit(task_id="shared", **shared)
    assert result.status_code == 409 and result.json["holder_task_id"] == "holder"


def test_claims_are_released_when_a_queued_holder_is_canceled(queued_holder: Runner, repo: Path, tmp_path: Path):
    queued_holder.cancel("holder")
    result = queued_holder.submit(task_id="second", **isolated(repo, tmp_path / "wt" / "held", "held"))
    assert result.status_code == 202, result.text


def test_two_clones_may_use_the_same_branch_name(make_runner, repo: Path, tmp_path: Path):
    runner = shell_runner(make_runner, "sleep 1000")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert runner.submit(task_id="a", **isolated(repo, tmp_path / "wa", "same")).status_code == 202
    assert runner.submit(task_id="b", **isolated(clone, tmp_path / "wb", "same")).status_code == 202
    runner.wait_status("a", "running")
    runner.wait_status("b", "running")
    for task_id in ("a", "b"):
        assert runner.cancel(task_id).json["worktree_cleanup_succeeded"] is True


def test_branch_checked_out_in_the_main_worktree_answers_409(runner: Runner, repo: Path, tmp_path: Path):
    result = runner.submit(task_id="main", **isolated(repo, tmp_path / "wt-main", "main"))
    assert result.status_code == 409, result.text
    assert result.json["detail"] == f"branch main is already checked out in worktree {repo}"
    assert not (tmp_path / "wt-main").exists()


def test_branch_checked_out_in_another_worktree_answers_409(runner: Runner, repo: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    git(repo, "worktree", "add", "-q", "-b", "busy", str(outside))
    result = runner.submit(task_id="busy", **isolated(repo, tmp_path / "wt-busy", "busy"))
    assert result.status_code == 409, result.text
    assert "already checked out" in result.json["detail"] and str(outside) in result.json["detail"]
    git(repo, "worktree", "remove", str(outside))


def test_path_already_registered_as_a_worktree_answers_409(runner: Runner, repo: Path, tmp_path: Path):
    gone = tmp_path / "gone"
    git(repo, "worktree", "add", "-q", "-b", "gone", str(gone))
    subprocess.run(["rm", "-rf", str(gone)], check=True)  # a leaked registration: the directory is gone
    result = runner.submit(task_id="gone", **isolated(repo, gone, "fresh"))
    assert result.status_code == 409, result.text
    assert "already a worktree" in result.json["detail"]
    git(repo, "worktree", "prune")


# --- validation --------------------------------------------------------------------------------------------
BAD_BRANCHES = ["-evil", "--force", "two..dots", "has space", "@{-1}", "HEAD", "ends.lock", "tilde~1", "colon:x",
                "trailing/", " ", 5, None]


@pytest.mark.parametrize("branch", BAD_BRANCHES)
def test_bad_branch_names_answer_422(runner: Runner, repo: Path, tmp_path: Path, branch):
    result = runner.submit(task_id="bad", **isolated(repo, tmp_path / "wt-bad", branch))
    assert result.status_code == 422, result.text
    assert result.json["field"] == "workspace.git_branch"
    assert git(repo, "branch", "--list") == "* main\n"


def _bad_path(case: str, repo: Path, tmp: Path) -> tuple[Path, str, str]:
    """(project_root, worktree_path, the field the 422 names)"""
    if case == "relative path":
        return repo, "wt", "workspace.worktree_path"
    if case == "inside .git":
        return repo, str(repo / ".git" / "wt"), "workspace.worktree_path"
    if case == "inside .git through ..":
        return repo, f"{repo}/src/../.git/wt", "workspace.worktree_path"
    if case == "non-empty directory":
        (tmp / "full").mkdir()
        (tmp / "full" / "file").write_text("x")
        return repo, str(tmp / "full"), "workspace.worktree_path"
    if case == "the project itself":
        return repo, str(repo), "workspace.worktree_path"
    if case == "a file":
        (tmp / "file").write_text("x")
        return repo, str(tmp / "file"), "workspace.worktree_path"
    if case == "broken symlink":
        (tmp / "dangling").symlink_to(tmp / "nowhere")
        return repo, str(tmp / "dangling"), "workspace.worktree_path"
    if case == "project is not a repository":
        (tmp / "plain").mkdir()
        return tmp / "plain", str(tmp / "wt"), "workspace.project_root"
    if case == "project without commits":
        (tmp / "empty").mkdir()
        git(tmp / "empty", "init", "-q")
        return tmp / "empty", str(tmp / "wt"), "workspace.project_root"
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "relative path", "inside .git", "inside .git through ..", "non-empty directory", "the project itself",
    "a file", "broken symlink", "project is not a repository", "project without commits",
])
def test_bad_paths_answer_422_naming_the_field(runner: Runner, repo: Path, tmp_path: Path, case: str):
    project, path, field = _bad_path(case, repo, tmp_path)
    before = worktree_list(repo)
    result = runner.submit(task_id="bad", **isolated(project, path, "fine"))
    assert result.status_code == 422, result.text
    assert result.json["field"] == field
    assert worktree_list(repo) == before


def test_missing_worktree_path_answers_422(runner: Runner, repo: Path):
    body = isolated(repo, "x", "fine")
    del body["workspace"]["worktree_path"]
    result = runner.submit(task_id="bad", **body)
    assert result.status_code == 422 and result.json["field"] == "workspace.worktree_path"


def test_an_empty_existing_directory_is_accepted(make_runner, repo: Path, tmp_path: Path):
    runner = shell_runner(make_runner, "pwd -P")
    path = tmp_path / "empty-dir"
    path.mkdir()
    runner.submit(task_id="empty", **isolated(repo, path, "empty"))
    final = runner.wait_status("empty")
    assert final["status"] == "success" and final["stdout"] == f"{os.path.realpath(path)}\n"


# --- setup -------------------------------------------------------------------------------------------------
def test_reset_branch_records_its_previous_tip(make_runner, repo: Path, tmp_path: Path):
    old = head(repo, "HEAD~1")
    git(repo, "branch", "existing", old)
    runner = shell_runner(make_runner, "git rev-parse HEAD")
    runner.submit(task_id="reset", **isolated(repo, tmp_path / "wt-reset", "existing"))
    final = runner.wait_status("reset")
    assert final["status"] == "success"
    assert final["worktree_previous_branch_tip"] == old
    assert final["stdout"] == f"{head(repo)}\n"
    log = (Path(final["logs"]["dir"]) / "worktree.log").read_text()
    assert f"previous tip was {old}" in log


@pytest.fixture
def blocked_runner(make_runner) -> Runner:
    """One slot, taken by a ``block`` task until it is canceled; any other task runs ``git status``."""
    runner = shell_runner(make_runner, 'if [ "$HOST_RUNNER_PROMPT" = block ]; then sleep 1000; fi; git status',
                          max_concurrency=1)
    runner.submit(task_id="blocker", prompt="block")
    runner.wait_status("blocker", "running")
    return runner


@pytest.mark.parametrize("branch_existed", [True, False])
def test_setup_failure_fails_the_task_with_gits_message_and_leaves_nothing_behind(
        blocked_runner: Runner, repo: Path, tmp_path: Path, branch_existed: bool):
    old = head(repo, "HEAD~1")
    if branch_existed:
        git(repo, "branch", "late", old)
    before = worktree_list(repo)
    path = tmp_path / "wt-late"
    assert blocked_runner.submit(task_id="late", **isolated(repo, path, "late")).json["status"] == "queued"
    path.mkdir()
    (path / "intruder.txt").write_text("not yours\n")  # the path fills up before the task gets to run
    blocked_runner.cancel("blocker")
    final = blocked_runner.wait_status("late")
    assert final["status"] == "failed"
    assert final["message"] == f"git worktree add failed: fatal: '{os.path.realpath(path)}' already exists"
    assert final["worktree_cleanup_attempted"] is False
    assert worktree_list(repo) == before
    assert (path / "intruder.txt").read_text() == "not yours\n"
    # git created or reset the branch before it failed; the runner put it back
    branches = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    assert branches.splitlines() == sorted([f"main {head(repo)}"] + ([f"late {old}"] if branch_existed else []))
    # nothing is reserved any more
    again = blocked_runner.submit(task_id="late-2", **isolated(repo, tmp_path / "wt-late-2", "late"))
    assert again.status_code == 202, again.text
    assert blocked_runner.wait_status("late-2")["status"] == "success"


def test_branch_checked_out_elsewhere_after_submit_fails_the_task(blocked_runner: Runner, repo: Path, tmp_path: Path):
    path = tmp_path / "wt-raced"
    assert blocked_runner.submit(task_id="raced", **isolated(repo, path, "raced")).json["status"] == "queued"
    outside = tmp_path / "outside"
    git(repo, "worktree", "add", "-q", "-b", "raced", str(outside), "HEAD~1")
    before = worktree_list(repo)
    blocked_runner.cancel("blocker")
    final = blocked_runner.wait_status("raced")
    assert final["status"] == "failed"
    assert final["message"].startswith("git worktree add failed: fatal: 'raced' is already checked out at")
    assert worktree_list(repo) == before
    assert not path.exists()
    assert head(repo, "raced") == head(repo, "HEAD~1")
    again = blocked_runner.submit(task_id="raced-2", **isolated(repo, path, "other"))
    assert again.status_code == 202, again.text
    assert blocked_runner.wait_status("raced-2")["status"] == "success"
    git(repo, "worktree", "remove", str(outside))


# --- scale and restarts ------------------------------------------------------------------------------------
def test_twenty_concurrent_tasks_on_one_repository(make_runner, repo: Path, tmp_path: Path):
    script = 'echo "$HOST_RUNNER_TASK_ID" > task.txt && git add task.txt && git commit -q -m "$HOST_RUNNER_TASK_ID"'
    runner = shell_runner(make_runner, script, max_concurrency=20)
    before = worktree_list(repo)
    names = [f"par-{index:02d}" for index in range(20)]
    for name in names:
        result = runner.submit(task_id=name, **isolated(repo, tmp_path / "many" / name, f"many/{name}"))
        assert result.status_code == 202, result.text
    for name in names:
        final = runner.wait_status(name, timeout=120)
        assert final["status"] == "success", final
        assert final["worktree_cleanup_succeeded"] is True, final
        assert final["worktree_commits"] == 1
        assert git(repo, "show", f"many/{name}:task.txt") == f"{name}\n"
    assert worktree_list(repo) == before
    assert not any((tmp_path / "many").iterdir())


def test_worktree_of_a_readopted_task_is_cleaned_up(make_runner, repo: Path, tmp_path: Path):
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f"echo started; while [ ! -e {go} ]; do sleep 0.05; done; echo done > done.txt")
    before = worktree_list(repo)
    path = tmp_path / "wt-adopt"
    runner.submit(task_id="adopt", **isolated(repo, path, "adopt"))
    wait_for(lambda: runner.get("adopt")["stdout"] == "started\n")
    second = runner.restart()
    assert second.get("adopt")["status"] == "running"
    go.touch()
    final = second.wait_status("adopt")
    assert final["status"] == "success"
    assert final["worktree_base_commit"] == head(repo)
    assert final["worktree_changed_files"] == ["done.txt"]
    assert_removed(final, path, repo, before)


def test_retrying_a_submission_returns_the_run_even_though_its_worktree_fills_the_path(
        make_runner, repo: Path, tmp_path: Path):
    runner = shell_runner(make_runner, "echo busy > busy.txt; sleep 1000")
    path = tmp_path / "wt-retry"
    body = isolated(repo, path, "retry")
    first = runner.submit(task_id="retry", **body)
    assert first.status_code == 202
    wait_for(lambda: (path / "busy.txt").exists())
    again = runner.submit(task_id="retry", **body)
    assert again.status_code == 200, again.text
    assert again.json["run_id"] == first.json["run_id"] and again.json["status"] == "running"
    other_run = runner.submit(task_id="retry", **{**body, "run_id": "run-2"})
    assert other_run.status_code == 409 and "already has an active run" in other_run.json["detail"]
    runner.cancel("retry")


def test_worktree_is_removed_when_the_command_cannot_start(make_runner, repo: Path, tmp_path: Path):
    runner = make_runner(executor="shell", cmd_template=("no-such-program-for-host-runner",))
    before = worktree_list(repo)
    path = tmp_path / "wt-nocommand"
    runner.submit(task_id="nocommand", **isolated(repo, path, "nocommand"))
    final = runner.wait_status("nocommand")
    assert final["status"] == "failed"
    assert final["message"] == "command not found: 'no-such-program-for-host-runner'"
    assert final["worktree_base_commit"] == head(repo)
    assert_removed(final, path, repo, before)
