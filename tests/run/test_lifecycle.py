"""Running, canceling and timing out real process groups; resubmission rules; the task list."""

from __future__ import annotations

from pathlib import Path

from support.processes import pids_in_group
from support.runner import Runner, shell_runner
from support.waiting import wait_for

GRANDCHILDREN = 'echo started; sleep 1000 & sleep 1000 & sh -c "sleep 1000" & wait'


def test_cancel_kills_the_whole_group_including_grandchildren(make_runner):
    runner = shell_runner(make_runner, GRANDCHILDREN)
    runner.submit(task_id="grand")
    record = wait_for(lambda: (r := runner.get("grand"))["stdout"] == "started\n" and r, what="output")
    pgid = record["pid"]
    wait_for(lambda: len(pids_in_group(pgid)) >= 5, what="the group to be complete")
    result = runner.cancel("grand")
    assert result.status_code == 200
    assert result.json["status"] == "canceled"
    assert result.json["message"] == "canceled by api"
    assert result.json["finished_at"]
    wait_for(lambda: not pids_in_group(pgid), timeout=5, what="every process of the group to be gone")


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(make_runner):
    runner = shell_runner(make_runner, "trap '' TERM; echo ready; sleep 1000 & wait", kill_grace_seconds=0.5)
    runner.submit(task_id="stubborn")
    record = wait_for(lambda: (r := runner.get("stubborn"))["stdout"] == "ready\n" and r, what="ready")
    result = runner.cancel("stubborn")
    assert result.json["status"] == "canceled"
    assert not pids_in_group(record["pid"])


def test_timeout_fails_the_task_keeps_partial_output_and_kills_the_group(make_runner):
    runner = shell_runner(make_runner, 'echo partial; sleep 1000 & sleep 1000')
    runner.submit(task_id="slow", timeout_seconds=1)
    record = runner.wait_status("slow", "failed")
    assert record["message"] == "timed out after 1 s"
    assert record["stdout"] == "partial\n"
    wait_for(lambda: not pids_in_group(record["pid"]), timeout=5, what="the group to be gone")


def test_background_processes_left_by_a_finished_command_are_stopped(make_runner):
    runner = shell_runner(make_runner, "sleep 1000 & echo done")
    runner.submit(task_id="leaves-child")
    record = runner.wait_status("leaves-child", "success")
    wait_for(lambda: not pids_in_group(record["pid"]), timeout=5, what="the leftover sleep to be stopped")


def test_cancel_of_a_finished_task_returns_it_unchanged(runner: Runner):
    runner.submit(task_id="done")
    before = runner.wait_status("done", "success")
    result = runner.cancel("done")
    assert result.status_code == 200
    assert result.json == before


def test_resubmitting_the_same_run_is_idempotent(make_runner):
    runner = shell_runner(make_runner, "sleep 1000")
    first = runner.submit(task_id="idem", run_id="r1")
    assert first.status_code == 202
    again = runner.submit(task_id="idem", run_id="r1")
    assert again.status_code == 200
    assert again.json["run_id"] == "r1"
    assert again.json["created_at"] == first.json["created_at"]
    other = runner.submit(task_id="idem", run_id="r2")
    assert other.status_code == 409
    assert other.json["holder_task_id"] == "idem"
    runner.cancel("idem")
    # After the run ended a new run is accepted and becomes the task's current record.
    assert runner.submit(task_id="idem", run_id="r2").status_code == 202
    assert runner.get("idem")["run_id"] == "r2"
    # Repeating the old run id does not start it again.
    repeat = runner.submit(task_id="idem", run_id="r1")
    assert repeat.status_code == 200
    assert repeat.json["status"] == "canceled"
    runner.cancel("idem")


def test_queue_admits_in_order_within_the_concurrency_limit(make_runner):
    runner = shell_runner(make_runner, "sleep 1000", max_concurrency=2)
    for name in ("q1", "q2", "q3", "q4"):
        runner.submit(task_id=name)
    # Admitted runs start in parallel helper threads, so q2 may be recorded running before q1.
    wait_for(lambda: runner.get("q1")["status"] == runner.get("q2")["status"] == "running", what="q1, q2 running")
    assert runner.get("q3")["status"] == "queued"
    canceled = runner.cancel("q4")  # a queued task ends at once, without ever running
    assert canceled.json["status"] == "canceled"
    assert canceled.json["started_at"] is None
    runner.cancel("q1")
    wait_for(lambda: runner.get("q3")["status"] == "running", what="q3 admitted after q1 ended")
    for name in ("q2", "q3"):
        runner.cancel(name)


def test_list_is_newest_first_and_filtered(make_runner, tmp_path: Path):
    runner = make_runner()
    project = tmp_path / "p"
    project.mkdir()
    runner.submit(task_id="l1")
    runner.submit(task_id="l2", execution_mode="shared-workspace",
                  workspace={"project_id": 42, "project_root": str(project), "lock_paths": [str(project)]})
    runner.submit(task_id="l3")
    for name in ("l1", "l2", "l3"):
        runner.wait_status(name, "success")
    listed = runner.client.simulate_get("/tasks").json
    assert [task["task_id"] for task in listed["tasks"]] == ["l3", "l2", "l1"]
    by_project = runner.client.simulate_get("/tasks", params={"project_id": "42"}).json["tasks"]
    assert [task["task_id"] for task in by_project] == ["l2"]
    limited = runner.client.simulate_get("/tasks", params={"limit": "1", "status": "success"}).json["tasks"]
    assert [task["task_id"] for task in limited] == ["l3"]
    assert runner.client.simulate_get("/tasks", params={"status": "running"}).json["tasks"] == []


def test_running_task_shows_live_output(make_runner):
    runner = shell_runner(make_runner, "echo one; sleep 1000")
    runner.submit(task_id="live")
    record = wait_for(lambda: (r := runner.get("live"))["stdout"] == "one\n" and r, what="live output")
    assert record["status"] == "running"
    assert record["pid"] > 0
    runner.cancel("live")


def test_output_tail_is_bounded_and_full_log_is_on_disk(make_runner):
    runner = shell_runner(make_runner, "head -c 300000 /dev/zero | tr '\\0' a; echo; echo end")
    runner.submit(task_id="big")
    record = runner.wait_status("big", "success")
    assert len(record["stdout"]) == 64 * 1024
    assert record["stdout"].endswith("a\nend\n")
    assert Path(record["logs"]["stdout"]).stat().st_size == 300000 + 5


def test_many_tasks_all_finish(make_runner):
    runner = shell_runner(make_runner, "echo $HOST_RUNNER_TASK_ID", max_concurrency=4)
    names = [f"many-{index}" for index in range(40)]
    for name in names:
        assert runner.submit(task_id=name).status_code == 202
    for name in names:
        record = runner.wait_status(name, "success", timeout=60)
        assert record["stdout"] == f"{name}\n"
