"""actors.journal: a transition and its outbox events are committed in one store transaction, and only then
is every listener told of each new event (in order); nothing committed, nobody told; a stopped listener is
skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.base import Actor, handles
from actors.journal import Journal
from actors.messages import CallbackQueued, Describe
from host_runner.domain.record import TaskRecord, utc_now
from host_runner.domain.request import TaskRequest
from host_runner.store.sqlite import Store

URL = "http://127.0.0.1:9/callback"


class Listener(Actor):
    """Keeps the event ids it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[str] = []

    @handles(CallbackQueued)
    def on_callback_queued(self, message: CallbackQueued) -> None:
        self.heard.append(message.event_id)

    def describe(self) -> dict[str, Any]:
        return {"heard": list(self.heard)}


def heard(ref: Any) -> list[str]:
    return ref.ask(Describe(), timeout=5)["heard"]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = Store(tmp_path / "db")
    yield store
    store.close()


def new_run(store: Store, task_id: str) -> TaskRecord:
    now = utc_now()
    record = TaskRecord(task_id=task_id, run_id="r1", execution_mode="no-workspace", executor="mock",
                        status="queued", created_at=now, updated_at=now, timeout_seconds=60)
    store.insert(record, TaskRequest(task_id=task_id, run_id="r1", prompt="p", status_callback_url=URL))
    return record


def test_a_commit_writes_the_record_and_its_events_then_tells_every_listener(store: Store):
    first, second = Listener.start(), Listener.start()
    try:
        journal = Journal(store, [first])
        journal.add_listener(second)
        record = new_run(store, "t1")
        [running] = journal.commit(record.evolve(status="running"), URL)
        assert running.status == "running" and store.get("t1", "r1").status == "running"
        frames = journal.commit(record.evolve(status="running", message="frames"), URL,
                                [{"status": "output", "output_index": 1}, {"status": "output", "output_index": 2}])
        assert [event.sequence for event in frames] == [2, 3]
        assert journal.commit(record.evolve(message="no url"), None) == []  # no URL: written, no event
        assert journal.commit(record.evolve(message="nothing new"), URL, []) == []  # no events asked for
        assert store.get("t1", "r1").message == "nothing new"
        expected = [running.event_id, *(event.event_id for event in frames)]
        assert heard(first) == expected and heard(second) == expected
        assert [event.event_id for event in store.pending_callbacks()] == expected
    finally:
        first.stop()
        second.stop()


def test_nothing_committed_nobody_told_and_a_stopped_listener_is_skipped(store: Store):
    stopped, listening = Listener.start(), Listener.start()
    stopped.stop()
    try:
        journal = Journal(store, [stopped, listening])
        record = new_run(store, "t1")
        with pytest.raises(KeyError):  # no such run: the transaction is rolled back
            journal.commit(record.evolve(task_id="nobody"), URL)
        assert heard(listening) == [] and store.pending_callbacks() == []
        [event] = journal.commit(record.evolve(status="running"), URL)
        assert heard(listening) == [event.event_id]
    finally:
        listening.stop()
