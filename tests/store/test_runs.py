"""Reads of the runs table that the hot submit path relies on."""

from __future__ import annotations

from pathlib import Path

from host_runner.domain.record import TaskRecord, utc_now
from host_runner.domain.request import TaskRequest
from host_runner.store.sqlite import Store


def add_run(store: Store, task_id: str, run_id: str, status: str = "success") -> TaskRecord:
    now = utc_now()
    record = TaskRecord(task_id=task_id, run_id=run_id, execution_mode="no-workspace", executor="mock",
                        status=status, created_at=now, updated_at=now, timeout_seconds=60)
    store.insert(record, TaskRequest(task_id=task_id, run_id=run_id, prompt="x"))
    return record


def test_run_and_latest_reads_one_run_and_the_newest_in_one_query(tmp_path: Path):
    store = Store(tmp_path / "db")
    add_run(store, "t", "r1")
    add_run(store, "t", "r2", status="running")
    add_run(store, "other", "r9")
    run, latest = store.run_and_latest("t", "r1")
    assert (run.run_id, latest.run_id, latest.status) == ("r1", "r2", "running")
    run, latest = store.run_and_latest("t", "r2")
    assert run.run_id == latest.run_id == "r2"
    assert store.run_and_latest("t", "r3")[0] is None and store.run_and_latest("t", "r3")[1].run_id == "r2"
    assert store.run_and_latest("nobody", "r1") == (None, None)
