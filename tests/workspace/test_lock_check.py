"""The lock check of shared-workspace runs: what a run changed in its git repository outside its lock paths is
listed on the record, in the terminal callback and in /metrics; HOST_RUNNER_LOCK_VIOLATION=fail fails such a
run; tasks working at the same time on disjoint locks are not blamed for each other's changes."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from host_runner.run.process_group import RunFiles
from host_runner.workspace import lock_check
from support.git_repos import git, make_repo
from support.runner import Runner, callbacks_settled, shell_runner
from support.waiting import wait_for

#: The task's prompt is its script, run by sh in the project root.
SCRIPT = 'eval "$HOST_RUNNER_PROMPT"'


def shared(root: Path, *locks: str, prompt: str) -> dict:
    return {"execution_mode": "shared-workspace", "prompt": prompt,
            "workspace": {"project_id": 1, "project_root": str(root), "lock_paths": [str(root / lock) for lock in locks]}}


def run(runner: Runner, task_id: str, body: dict) -> dict:
    assert runner.submit(task_id=task_id, **body).status_code == 202
    return runner.wait_status(task_id)


def test_changes_inside_the_locks_are_no_violation(make_runner, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    (repo / "old.txt").write_text("changed before the task\n")  # dirty at the start, not touched by the task
    (repo / "notes.txt").write_text("untracked before the task\n")
    runner = shell_runner(make_runner, SCRIPT)
    record = run(runner, "inside", shared(repo, "src", prompt="echo 2 >> src/app.py; mkdir -p src/new; echo x > src/new/f"))
    assert record["status"] == "success", record
    assert record["lock_violations"] == [] and record["lock_violations_count"] == 0
    assert "lock_check_error" not in record and "failure_reason" not in record


def test_changes_outside_the_locks_are_listed(make_runner, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    (repo / "old.txt").write_text("dirty at the start\n")
    (repo / "still.txt").write_text("untracked at the start, left alone\n")
    runner = shell_runner(make_runner, SCRIPT)
    script = ("echo more >> old.txt; echo x >> README.md; mkdir docs; echo y > 'docs/with space.md'; "
              "printf z > \"$(printf 'new\\nline')\"; git mv src/app.py moved.py; echo inside > src/ok.py")
    record = run(runner, "outside", shared(repo, "src", prompt=script))
    assert record["status"] == "success", record  # report mode: listed, the run keeps its status
    expected = ["README.md", "docs/with space.md", "moved.py", "new\nline", "old.txt"]
    assert record["lock_violations"] == expected  # src/app.py (the rename's old side) is inside the lock
    assert record["lock_violations_count"] == 5


def test_committed_changes_outside_the_locks_are_listed(make_runner, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    runner = shell_runner(make_runner, SCRIPT)
    script = "echo x >> README.md; echo y >> src/app.py; git commit -qam 'agent work'"
    record = run(runner, "commits", shared(repo, "src", prompt=script))
    assert git(repo, "status", "--porcelain") == ""  # nothing left uncommitted: only HEAD says what changed
    assert record["lock_violations"] == ["README.md"]


def test_a_project_root_below_the_repository_top(make_runner, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    project = repo / "services" / "api"
    project.mkdir(parents=True)
    runner = shell_runner(make_runner, SCRIPT)
    record = run(runner, "sub", shared(project, "lib", prompt="mkdir lib; echo a > lib/a; echo b > ../b.txt; echo c > c"))
    assert record["lock_violations"] == ["services/api/c", "services/b.txt"]  # relative to the repository's top


def test_fail_mode_fails_a_run_that_changed_files_outside_its_locks(make_runner, receiver, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    runner = shell_runner(make_runner, SCRIPT, lock_violation="fail")
    bad = run(runner, "bad", {**shared(repo, "src", prompt="echo x >> README.md"),
                              "status_callback_url": receiver.url})
    assert bad["status"] == "failed" and bad["exit_code"] == 0
    assert bad["failure_reason"] == "lock_violation"
    assert bad["message"] == "lock violation: 1 path changed outside the lock paths (README.md)"
    assert bad["lock_violations"] == ["README.md"]
    wait_for(lambda: len(receiver.delivered("bad")) == 2, what="the terminal callback")
    terminal = receiver.delivered("bad")[-1].body
    assert terminal["status"] == "failed" and terminal["lock_violations"] == ["README.md"]
    assert terminal["lock_violations_count"] == 1 and "failure_reason" not in terminal  # on the record only
    assert "lock_violations" not in receiver.delivered("bad")[0].body  # running: the check has not run yet

    good = run(runner, "good", {**shared(repo, "src", prompt="echo y >> src/app.py"),
                                "status_callback_url": receiver.url})
    assert good["status"] == "success" and good["lock_violations"] == [] and "failure_reason" not in good
    failing = run(runner, "failing", shared(repo, "src", prompt="echo z >> README.md; exit 3"))
    assert failing["message"] == "exited with code 3"  # only a success changes
    assert failing["failure_reason"] == "exit_code" and failing["lock_violations"] == ["README.md"]

    plain = run(runner, "plain", {"prompt": "true", "status_callback_url": receiver.url})  # no-workspace
    assert plain["status"] == "success" and "lock_violations" not in plain
    wait_for(lambda: callbacks_settled(runner, "plain", 2), what="the plain task's callbacks")
    assert not {"lock_violations", "lock_violations_count", "lock_check_error", "failure_reason"} & set(
        receiver.delivered("plain")[-1].body)

    samples = {(sample.name, tuple(sample.labels.items())): sample.value for family in text_string_to_metric_families(
        runner.client.simulate_get("/metrics", headers=runner.headers()).text) for sample in family.samples}
    assert samples[("host_runner_lock_checks_total", (("outcome", "violations"),))] == 2
    assert samples[("host_runner_lock_checks_total", (("outcome", "clean"),))] == 1
    assert samples[("host_runner_lock_violation_paths_total", ())] == 2


def test_concurrent_tasks_on_disjoint_locks_do_not_blame_each_other(make_runner, tmp_path: Path):
    """a writes first and ends last, b writes and ends while a runs: each sees the other's change, neither is
    blamed (a's check runs after b released its lock: the registry remembers b's for a)."""
    repo = make_repo(tmp_path / "repo")
    runner = shell_runner(make_runner, SCRIPT)
    wait = "while [ ! -e {0} ]; do sleep 0.05; done"
    first = f"mkdir -p a; echo a > a/work; {wait.format('b/work')}; echo again >> a/work"
    second = f"{wait.format('a/work')}; mkdir -p b; echo b > b/work"
    assert runner.submit(task_id="first", **shared(repo, "a", prompt=first)).status_code == 202
    assert runner.submit(task_id="second", **shared(repo, "b", prompt=second)).status_code == 202
    assert runner.wait_status("second")["lock_violations"] == []  # not a/work
    assert runner.wait_status("first")["lock_violations"] == []  # not b/work


def test_a_directory_that_is_no_git_repository_is_not_checked(make_runner, tmp_path: Path):
    project = tmp_path / "plain"
    project.mkdir()
    runner = shell_runner(make_runner, SCRIPT)
    record = run(runner, "nogit", shared(project, "src", prompt="echo x > outside.txt"))
    assert record["status"] == "success"
    assert not {"lock_violations", "lock_violations_count", "lock_check_error"} & set(record)


def test_paths_the_agent_reported_are_checked_too(tmp_path: Path):
    """What an executor recorded in files_changed counts even when git does not see it (an ignored file)."""
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("build/\n")
    files = RunFiles(tmp_path / "run")
    files.directory.mkdir()
    lock_check.record_start(repo, files)
    (repo / "build").mkdir()
    (repo / "build" / "out").write_text("ignored by git\n")
    locks = [os.path.realpath(repo / "src")]
    fields = lock_check.check(repo, files, locks, ["build/out", str(repo / "src" / "app.py"), "/elsewhere/x"])
    assert fields == {"lock_violations": ["/elsewhere/x", "build/out"], "lock_violations_count": 2}  # .gitignore: as at the start


def test_the_check_of_a_run_adopted_after_a_restart_uses_the_snapshot_of_its_start(make_runner, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    go = tmp_path / "go"
    runner = shell_runner(make_runner, SCRIPT)
    script = f"echo early >> README.md; while [ ! -e {go} ]; do sleep 0.05; done; echo late >> old.txt"
    assert runner.submit(task_id="adopted", **shared(repo, "src", prompt=script)).status_code == 202
    wait_for(lambda: "early" in (repo / "README.md").read_text(), what="the task's first change")
    runner = runner.restart()
    go.touch()
    record = runner.wait_status("adopted")
    assert record["status"] == "success", record
    assert record["lock_violations"] == ["README.md", "old.txt"]  # before and after the restart
