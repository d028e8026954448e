"""A restarted runner loses nothing: finished tasks stay readable, running ones are re-adopted, queued ones
run in their order, and a pid that now belongs to another process is never taken for ours."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from support.processes import pids_in_group
from support.runner import shell_runner
from support.waiting import wait_for


def test_finished_tasks_survive_a_restart(runner):
    runner.submit(task_id="keep", prompt="remember me")
    before = runner.wait_status("keep", "success")
    after = runner.restart()
    assert after.get("keep") == before


def test_running_task_is_readopted_and_finishes_with_its_real_exit_code(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    script = f'echo before; while [ ! -e {go} ]; do sleep 0.05; done; echo after; exit 7'
    runner = shell_runner(make_runner, script)
    runner.submit(task_id="adopt")
    record = wait_for(lambda: (r := runner.get("adopt"))["stdout"] == "before\n" and r)
    second = runner.restart()
    assert second.get("adopt")["status"] == "running"
    assert second.get("adopt")["pid"] == record["pid"]
    go.touch()
    final = second.wait_status("adopt", "failed")
    assert final["exit_code"] == 7
    assert final["stdout"] == "before\nafter\n"
    assert final["message"] == "exited with code 7"


def test_readopted_task_can_be_canceled_with_its_whole_group(make_runner):
    runner = shell_runner(make_runner, "sleep 1000 & sleep 1000")
    runner.submit(task_id="adopt-cancel")
    pgid = runner.wait_status("adopt-cancel", "running")["pid"]
    wait_for(lambda: len(pids_in_group(pgid)) >= 3)
    second = runner.restart()
    assert second.cancel("adopt-cancel").json["status"] == "canceled"
    wait_for(lambda: not pids_in_group(pgid), timeout=5)


def test_task_that_ended_while_the_runner_was_down_gets_its_real_status(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f"while [ ! -e {go} ]; do sleep 0.05; done; exit 5")
    runner.submit(task_id="ended-offline")
    pgid = runner.wait_status("ended-offline", "running")["pid"]
    runner.system.stop()
    go.touch()
    wait_for(lambda: not pids_in_group(pgid), what="the task to end while no runner runs")
    second = runner.restart()
    final = second.wait_status("ended-offline", "failed")
    assert final["exit_code"] == 5


def test_queued_tasks_run_after_a_restart_in_their_order(make_runner):
    runner = shell_runner(make_runner, "sleep 1000", max_concurrency=1)
    for name in ("first", "second", "third"):
        runner.submit(task_id=name)
    runner.wait_status("first", "running")
    runner.cancel("first")  # leaves a free slot only in the next runner's life
    runner.system.stop()
    second = runner.restart()
    second.wait_status("second", "running")
    assert second.get("third")["status"] == "queued"
    second.cancel("second")
    second.wait_status("third", "running")
    second.cancel("third")


def test_a_reused_pid_is_not_taken_for_ours(make_runner, tmp_path: Path):
    runner = shell_runner(make_runner, "echo up; sleep 1000")
    runner.submit(task_id="reused")
    pgid = wait_for(lambda: (r := runner.get("reused"))["stdout"] == "up\n" and r)["pid"]
    runner.system.stop()
    os.killpg(pgid, 9)
    wait_for(lambda: not pids_in_group(pgid))
    # Pretend the pid now belongs to another live process: this test process (which must survive).
    with sqlite3.connect(runner.config.db_path) as db:
        db.execute("UPDATE runs SET pid = ? WHERE task_id = 'reused'", (os.getpid(),))
    second = runner.restart()
    final = second.wait_status("reused", "failed")
    assert final["message"] == "lost: runner restarted and the process was gone"
    assert final["failure_reason"] == "lost"


def test_stopping_while_a_task_starts_never_runs_it_twice(make_runner, tmp_path: Path):
    starts = tmp_path / "starts"
    runner = shell_runner(make_runner, f"echo $$ >> {starts}; sleep 1000")
    for attempt in range(5):
        runner.submit(task_id=f"race-{attempt}")
        runner = runner.restart()  # stop right after the submit, while the task is being started
    for attempt in range(5):
        runner.wait_status(f"race-{attempt}", "running")
    wait_for(lambda: starts.exists() and len(starts.read_text().split()) == 5, what="5 starts")
    for attempt in range(5):
        runner.cancel(f"race-{attempt}")
    assert len(starts.read_text().split()) == 5


def test_a_wrapper_never_released_is_stopped_and_its_task_runs_once(make_runner, tmp_path: Path):
    """The runner died after starting the wrapper but before letting it run: recovery must not adopt it."""
    from host_runner.run.process_group import ProcessSpec, RunFiles, spawn, start_ticks

    starts = tmp_path / "starts"
    runner = shell_runner(make_runner, f"echo x >> {starts}; exit 0", max_concurrency=1)
    runner.submit(task_id="blocker")  # occupies the only slot, so "orphan" stays queued
    runner.wait_status("blocker", "success")
    runner.system.stop()
    # Recreate the state a kill -9 leaves: the record says running with the pid of a wrapper that was never
    # released (its go pipe is held here, as it would have been by the dead runner).
    runner = runner.restart()
    runner.submit(task_id="orphan")
    runner.wait_status("orphan", "success")
    starts.write_text("")
    runner.system.stop()
    record_files = RunFiles(runner.config.runs_dir / "orphan" / "run-1")
    record_files.launched.unlink()
    (record_files.exit_status).unlink()
    spawned = spawn(ProcessSpec(argv=("sh", "-c", f"echo x >> {starts}"), env=dict(os.environ), cwd=tmp_path),
                    record_files)
    pid = spawned.popen.pid
    with sqlite3.connect(runner.config.db_path) as db:
        db.execute("UPDATE runs SET status='running', pid=?, pid_start_ticks=?, exit_code=NULL, finished_at=NULL "
                   "WHERE task_id='orphan'", (pid, start_ticks(pid)))
    second = runner.restart()
    final = second.wait_status("orphan", "success")
    assert spawned.popen.wait(timeout=10) != 0  # the stale wrapper was killed, not adopted
    assert starts.read_text() == "x\n"  # the command ran exactly once, by the new runner
    assert final["pid"] != pid


def test_shutdown_cancel_mode_stops_every_task_before_exiting(make_runner):
    runner = shell_runner(make_runner, "echo up; sleep 1000 & sleep 1000", max_concurrency=1, shutdown="cancel")
    runner.submit(task_id="active")
    runner.submit(task_id="waiting")
    pgid = wait_for(lambda: (r := runner.get("active"))["stdout"] == "up\n" and r)["pid"]
    runner.system.stop()
    assert not pids_in_group(pgid)  # gone before stop() returned
    second = runner.restart(shutdown="leave")
    for name in ("active", "waiting"):
        record = second.get(name)
        assert record["status"] == "canceled"
        assert record["message"] == "canceled: the runner is shutting down"


def test_default_shutdown_leaves_tasks_running_and_refuses_new_ones(make_runner):
    from actors.messages import PrepareShutdown

    runner = shell_runner(make_runner, "echo up; sleep 1000")
    runner.submit(task_id="stays")
    pgid = wait_for(lambda: (r := runner.get("stays"))["stdout"] == "up\n" and r)["pid"]
    assert runner.system.supervisor.ask(PrepareShutdown(cancel=False)) == []
    refused = runner.submit(task_id="too-late")
    assert refused.status_code == 503
    assert "shutting down" in refused.json["detail"]
    runner.system.stop()
    assert pids_in_group(pgid)
    second = runner.restart()
    assert second.get("stays")["status"] == "running"
    second.cancel("stays")
