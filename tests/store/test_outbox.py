"""The callback outbox in the real SQLite store: an event is written in the same transaction as the transition
it reports (both or neither), with a unique id and the run's next sequence number; and the signing, backoff and
classification rules of host_runner.store.outbox and host_runner.delivery.retry."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import sqlite3
from pathlib import Path

import pytest

from host_runner.delivery.http import receiver_of
from host_runner.delivery.retry import backoff_delay, classify
from host_runner.domain.record import TaskRecord, utc_now
from host_runner.domain.request import TaskRequest
from host_runner.store.outbox import Delivery, headers_for, sign
from host_runner.store.sqlite import Store

URL = "http://127.0.0.1:9/callback"


def new_run(store: Store, task_id: str, token: str | None = "tok") -> TaskRecord:
    now = utc_now()
    record = TaskRecord(task_id=task_id, run_id="r1", execution_mode="no-workspace", executor="mock",
                        status="queued", created_at=now, updated_at=now, timeout_seconds=60)
    store.insert(record, TaskRequest(task_id=task_id, run_id="r1", prompt="p", status_callback_url=URL,
                                     status_callback_token=token))
    return record


def test_a_transition_and_its_event_are_written_together(tmp_path: Path):
    store = Store(tmp_path / "db")
    record = new_run(store, "t1")
    running = store.update(record.evolve(status="running", started_at=utc_now()), callback_url=URL)
    success = store.update(record.evolve(status="success", exit_code=0, stdout="out"), callback_url=URL)
    assert running is not None and success is not None
    assert (running.sequence, running.status, success.sequence, success.status) == (1, "running", 2, "success")
    assert running.event_id != success.event_id
    assert [event.event_id for event in store.pending_callbacks()] == [running.event_id, success.event_id]
    url, token, body = store.callback_delivery(success.event_id)
    assert (url, token) == (URL, "tok")
    sent = json.loads(body)
    assert sent["status"] == "success" and sent["stdout"] == "out" and sent["exit_code"] == 0
    assert (sent["task_id"], sent["run_id"], sent["event_id"], sent["sequence"]) == ("t1", "r1", success.event_id, 2)
    assert store.update(record.evolve(status="running"), callback_url=None) is None  # no URL, no event
    assert len(store.callbacks_for("t1", "r1")) == 2
    store.close()


def test_a_failed_transition_writes_no_event_and_a_failed_event_undoes_the_transition(tmp_path: Path):
    store = Store(tmp_path / "db")
    record = new_run(store, "t1")
    store.update(record.evolve(status="running"), callback_url=URL)
    ghost = record.evolve(task_id="nobody")
    with pytest.raises(KeyError):
        store.update(ghost, callback_url=URL)
    assert store.callbacks_for("nobody", "r1") == []
    with pytest.raises(TypeError):  # the event cannot be written (its body is not JSON): nothing is
        store.update(record.evolve(status="success"), callback_url=URL, callback_fields={"status": object()})
    assert store.get("t1").status == "running"
    assert [event.status for event in store.pending_callbacks()] == ["running"]
    store.close()


def test_events_and_their_state_survive_reopening_the_store(tmp_path: Path):
    store = Store(tmp_path / "db")
    record = new_run(store, "t1", token=None)
    event = store.update(record.evolve(status="running"), callback_url=URL)
    store.record_callback_attempt(event.event_id, state="pending", attempts=2, last_error="HTTP 503")
    store.close()
    reopened = Store(tmp_path / "db")
    (pending,) = reopened.pending_callbacks()
    assert (pending.event_id, pending.attempts, pending.state) == (event.event_id, 2, "pending")
    assert reopened.callback_delivery(event.event_id)[1] is None
    assert json.loads(reopened.callback_delivery(event.event_id)[2])["status"] == "running"
    reopened.record_callback_attempt(event.event_id, state="delivered", attempts=3, last_error=None)
    assert reopened.callback_delivery(event.event_id)[2] == ""  # settled: the body is not kept
    (shown,) = reopened.callbacks_for("t1", "r1")
    assert (shown["state"], shown["attempts"], shown["last_error"]) == ("delivered", 3, "HTTP 503")
    assert shown["delivered_at"] and "url" not in shown and reopened.pending_callbacks() == []
    reopened.close()
    with sqlite3.connect(tmp_path / "db") as raw:  # and the token is not copied into the outbox
        assert raw.execute("SELECT COUNT(*) FROM callback_events WHERE body LIKE '%tok%'").fetchone() == (0,)


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = '{"status":"running"}'
    delivery = Delivery("e1", URL, "tok", body, 1)
    headers = headers_for(delivery, "k", now=1700000000.5)
    assert headers["X-Runner-Timestamp"] == "1700000000"
    expected = hmac.new(b"k", b'1700000000.{"status":"running"}', hashlib.sha256).hexdigest()
    assert headers["X-Runner-Signature"] == f"sha256={expected}" == sign("k", "1700000000", body.encode())
    assert headers["X-Runner-Token"] == "tok" and headers["X-Runner-Event-Id"] == "e1"
    assert "X-Runner-Signature" not in headers_for(delivery, None)
    assert "X-Runner-Token" not in headers_for(Delivery("e1", URL, None, body, 1), None)


def test_backoff_starts_near_the_base_doubles_and_is_capped():
    rng = random.Random(7)
    first = [backoff_delay(1, 1.0, 60.0, rng) for _ in range(100)]
    assert all(0.8 <= delay <= 1.2 for delay in first)
    assert all(3.2 <= backoff_delay(3, 1.0, 60.0, rng) <= 4.8 for _ in range(100))
    assert all(backoff_delay(attempts, 1.0, 60.0, rng) <= 60.0 for attempts in range(1, 30))


def test_classification_and_lanes():
    assert classify(204).delivered and not classify(404).retryable and not classify(302).retryable
    assert classify(503).retryable and classify(408).retryable and classify(429).retryable
    assert receiver_of("http://user:pw@Example.com/a?x=1") == "http://example.com:80"
    assert receiver_of("https://example.com:8443/b") == "https://example.com:8443"


def test_callback_settings_are_read_and_the_secret_is_not_shown():
    from host_runner.ops.config import ConfigError, load_config

    config = load_config({"HOST_RUNNER_CALLBACK_SECRET": "s3cret", "HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS": "5"})
    assert config.callback_secret == "s3cret" and config.callback_backoff_max_seconds == 5.0
    assert "s3cret" not in repr(config)
    assert load_config({}).callback_secret is None and load_config({}).callback_backoff_max_seconds == 60.0
    with pytest.raises(ConfigError, match="HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS"):
        load_config({"HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS": "0"})


def test_a_bad_port_still_names_a_lane():
    assert receiver_of("http://h:99999/x") == "http://h:?"
