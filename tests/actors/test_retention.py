"""Retention: finished runs beyond HOST_RUNNER_RETENTION_MAX_RUNS or older than HOST_RUNNER_RETENTION_SECONDS go
(row, settled callback events, run directory), oldest first; active runs and runs still reporting stay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import actors.retention

from support.runner import Runner, shell_runner
from support.service import free_port
from support.waiting import wait_for

SCRIPT = 'if [ "$HOST_RUNNER_PROMPT" = wait ]; then sleep 1000; fi; echo out-$HOST_RUNNER_PROMPT'


@pytest.fixture(autouse=True)
def quick_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep every half second (at most every 5 minutes otherwise: the count bound would wait that long)."""
    monkeypatch.setattr(actors.retention, "LONGEST_PAUSE", 0.5)


def status_code(runner: Runner, task_id: str) -> int:
    return runner.client.simulate_get(f"/tasks/{task_id}", headers=runner.headers()).status_code


def pruned(runner: Runner, name: str) -> float:
    text = runner.client.simulate_get("/metrics", headers=runner.headers()).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name)


def test_beyond_the_newest_max_runs_the_oldest_finished_runs_go_never_an_active_one(make_runner):
    runner = shell_runner(make_runner, SCRIPT, retention_max_runs=2)
    assert runner.submit(task_id="active", prompt="wait").status_code == 202
    runner.wait_status("active", "running")
    for index in range(5):
        assert runner.submit(task_id=f"t{index}", prompt=str(index)).status_code == 202
        runner.wait_status(f"t{index}")
    runs = runner.config.runs_dir
    # The rows go first, their directories right after (in the same sweep): wait for both.
    wait_for(lambda: all(status_code(runner, f"t{index}") == 404 and not (runs / f"t{index}").exists()
                         for index in range(3)), 15, what="the three oldest finished runs to be pruned")
    for task_id in ("t3", "t4", "active"):
        assert status_code(runner, task_id) == 200
        assert (runs / task_id).is_dir()
    assert runner.get("t4")["stdout"].strip() == "out-4"
    assert runner.get("active")["status"] == "running"
    assert wait_for(lambda: pruned(runner, "host_runner_pruned_runs_total") == 3, 10)
    # a newer run of the same task counts as one more finished run: the task stays, its older run goes
    assert runner.submit(task_id="t4", run_id="run-2", prompt="again").status_code == 202
    runner.wait_status("t4")
    wait_for(lambda: status_code(runner, "t3") == 404, 15, what="t3 to be pruned")
    assert (runs / "t4" / "run-1").is_dir()
    assert runner.submit(task_id="t4", run_id="run-3", prompt="again").status_code == 202
    runner.wait_status("t4")
    wait_for(lambda: not (runs / "t4" / "run-1").exists(), 15, what="t4's first run to be pruned")
    assert runner.get("t4")["run_id"] == "run-3" and (runs / "t4" / "run-2").is_dir()


def test_finished_runs_older_than_the_age_bound_go_once_their_callbacks_are_settled(make_runner):
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens: every attempt fails until given up
    runner = shell_runner(make_runner, SCRIPT, retention_seconds=1, callback_max_attempts=3,
                          callback_backoff_seconds=1.5, callback_backoff_max_seconds=1.5)
    assert runner.submit(task_id="quiet", prompt="1").status_code == 202
    assert runner.submit(task_id="told", prompt="2", status_callback_url=dead).status_code == 202
    runner.wait_status("quiet")
    runner.wait_status("told")
    # The row goes first, its directory right after (in the same sweep): wait for both.
    wait_for(lambda: status_code(runner, "quiet") == 404 and not (runner.config.runs_dir / "quiet").exists(), 15,
             what="the old run without callbacks to be pruned, row and directory")
    # "told" is older than the bound too, but its events are still pending: it stays until they are settled
    pending_seen = False
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        record = runner.get("told")  # 200, or this fails
        pending_seen = pending_seen or any(event["state"] == "pending" for event in record["callbacks"])
        time.sleep(0.1)
    assert pending_seen
    wait_for(lambda: status_code(runner, "told") == 404 and not (runner.config.runs_dir / "told").exists(), 30,
             what="the run to go once its callbacks gave up, row and directory")
    assert wait_for(lambda: pruned(runner, "host_runner_pruned_callback_events_total") >= 2, 10)
    assert pruned(runner, "host_runner_pruned_runs_total") == 2
    store = runner.system.store
    assert store is not None and store.pending_callbacks() == [] and store.get("told") is None


def test_runs_pruned_while_stopped_go_at_start(make_runner, tmp_path: Path):
    runner = shell_runner(make_runner, SCRIPT)
    for index in range(3):
        runner.submit(task_id=f"s{index}", prompt=str(index))
        runner.wait_status(f"s{index}")
    restarted = runner.restart(retention_max_runs=1)
    wait_for(lambda: status_code(restarted, "s0") == 404 and status_code(restarted, "s1") == 404, 15,
             what="the start's sweep")
    assert status_code(restarted, "s2") == 200


def test_the_count_bound_ranks_runs_by_their_end_so_a_long_run_that_just_ended_stays(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f'if [ "$HOST_RUNNER_PROMPT" = long ]; then while [ ! -e {go} ]; do '
                                       'sleep 0.05; done; fi; echo out-$HOST_RUNNER_PROMPT', retention_max_runs=2)
    assert runner.submit(task_id="long", prompt="long").status_code == 202  # submitted first, ends last
    runner.wait_status("long", "running")
    for index in range(3):
        runner.submit(task_id=f"e{index}", prompt=str(index))
        runner.wait_status(f"e{index}")
    wait_for(lambda: status_code(runner, "e0") == 404, 15, what="e0 to be pruned")
    go.touch()
    runner.wait_status("long")
    wait_for(lambda: status_code(runner, "e1") == 404, 15, what="e1 to be pruned")
    assert runner.get("long")["stdout"].strip() == "out-long"
    assert status_code(runner, "e2") == 200
