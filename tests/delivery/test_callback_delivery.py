"""Durable, ordered, signed callbacks against real HTTP receivers on 127.0.0.1: retries keep the order, final
errors are final and recorded, a hanging receiver does not hold up another, signatures verify, pending events
survive a restart (and a kill -9 of the service), and event ids let receivers de-duplicate."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from support.receivers import CallbackReceiver, Received, verify_signature
from support.runner import callbacks_settled, shell_runner
from support.service import free_port, start_service, stop_service
from support.waiting import wait_for


def assert_in_order(requests_seen: list[Received]) -> None:
    """No request for event n+1 before event n of the same run was answered 2xx (or given up: not here)."""
    delivered: set[int] = set()
    for item in requests_seen:
        sequence = item.body["sequence"]
        assert all(earlier in delivered for earlier in range(1, sequence)), (
            f"event {sequence} sent before {sorted(set(range(1, sequence)) - delivered)} were delivered"
        )
        if 200 <= item.code < 300:
            delivered.add(sequence)


def test_order_holds_under_retries_across_many_runs(make_runner, receiver: CallbackReceiver):
    runner = make_runner(mock_seconds=0)  # the terminal event exists while the first one is still retried
    receiver.responses = [503, 500, 429, 408, 502, 504] * 3
    names = [f"order-{index}" for index in range(6)]
    for name in names:
        runner.submit(task_id=name, status_callback_url=receiver.url)
    for name in names:
        wait_for(lambda name=name: len(receiver.delivered(name)) == 2, what=f"2 deliveries for {name}")
        assert_in_order(receiver.for_task(name))
        assert [item.body["status"] for item in receiver.delivered(name)] == ["running", "success"]
        assert [item.body["sequence"] for item in receiver.delivered(name)] == [1, 2]
    assert sum(1 for item in receiver.received if item.code != 200) == 18  # every failure was retried


def test_a_receiver_failing_the_first_attempts_gets_everything_and_the_record_shows_it(runner,
                                                                                       receiver: CallbackReceiver):
    receiver.responses = [500, 503, 500]
    runner.submit(task_id="flaky", status_callback_url=receiver.url)
    record = wait_for(lambda: callbacks_settled(runner, "flaky", 2), what="both events settled")
    running, success = record["callbacks"]
    assert (running["sequence"], running["status"], running["state"]) == (1, "running", "delivered")
    assert running["attempts"] == 4 and running["last_error"] == "HTTP 500" and running["delivered_at"]
    assert (success["sequence"], success["status"], success["state"], success["attempts"]) == (
        2, "success", "delivered", 1)
    assert [item.body["event_id"] for item in receiver.delivered("flaky")] == [running["event_id"],
                                                                               success["event_id"]]
    assert [item.headers["X-Runner-Attempt"] for item in receiver.for_task("flaky")] == ["1", "2", "3", "4", "1"]


def test_a_receiver_down_for_a_while_gets_the_events_when_it_comes_back(make_runner):
    port = free_port()  # nothing listens here yet: connections are refused
    runner = make_runner(mock_seconds=0, callback_max_attempts=100, callback_backoff_max_seconds=0.3)
    runner.submit(task_id="down", status_callback_url=f"http://127.0.0.1:{port}/callback", status_callback_token="t")
    runner.wait_status("down", "success")
    record = wait_for(lambda: (r := runner.get("down"))["callbacks"][0]["attempts"] >= 3 and r,
                      what="a few failed attempts")
    first, second = record["callbacks"]
    assert (first["state"], first["last_error"]) == ("pending", "connection failed")
    assert (second["state"], second["attempts"]) == ("pending", 0)  # waits behind the first
    back = CallbackReceiver(port)
    try:
        wait_for(lambda: len(back.delivered("down")) == 2, what="delivery once the receiver is back")
        assert [item.body["status"] for item in back.delivered("down")] == ["running", "success"]
        assert_in_order(back.for_task("down"))
        settled = wait_for(lambda: callbacks_settled(runner, "down", 2))
        assert [event["state"] for event in settled["callbacks"]] == ["delivered", "delivered"]
        assert [event["event_id"] for event in settled["callbacks"]] == [first["event_id"], second["event_id"]]
    finally:
        back.close()


def test_a_400_is_final_recorded_and_the_next_event_still_goes(runner, receiver: CallbackReceiver):
    receiver.responses = [400]
    runner.submit(task_id="bad-request", status_callback_url=receiver.url)
    record = wait_for(lambda: callbacks_settled(runner, "bad-request", 2), what="both events settled")
    running, success = record["callbacks"]
    assert (running["state"], running["attempts"], running["last_error"]) == ("failed", 1, "HTTP 400")
    assert success["state"] == "delivered"
    assert [(item.body["status"], item.code) for item in receiver.for_task("bad-request")] == [
        ("running", 400), ("success", 200)]


def test_giving_up_after_the_last_attempt_is_recorded_and_logged(make_runner, receiver: CallbackReceiver, caplog):
    caplog.set_level(logging.WARNING, logger="actors.callback_sender")
    receiver.default = 503
    runner = make_runner(mock_seconds=0, callback_max_attempts=3)
    runner.submit(task_id="hopeless", status_callback_url=receiver.url)
    record = wait_for(lambda: callbacks_settled(runner, "hopeless", 2), what="both events given up")
    assert [(event["state"], event["attempts"], event["last_error"]) for event in record["callbacks"]] == [
        ("failed", 3, "HTTP 503"), ("failed", 3, "HTTP 503")]
    assert [item.body["sequence"] for item in receiver.for_task("hopeless")] == [1, 1, 1, 2, 2, 2]
    assert "gave up on callback running #1 of task hopeless run run-1 after 3 attempts: HTTP 503" in caplog.text


def test_redirects_are_not_followed_so_the_token_stays_with_the_receiver(runner, receiver: CallbackReceiver):
    elsewhere = CallbackReceiver()
    try:
        receiver.redirect_to = elsewhere.url
        receiver.responses = [307]
        runner.submit(task_id="redirect", status_callback_url=receiver.url, status_callback_token="only-for-you")
        record = wait_for(lambda: callbacks_settled(runner, "redirect", 2))
        assert record["callbacks"][0]["state"] == "failed"
        assert record["callbacks"][0]["last_error"] == "HTTP 307 (redirects are not followed)"
        assert elsewhere.received == []
    finally:
        elsewhere.close()


def test_a_hanging_receiver_does_not_delay_another_receivers_callbacks(make_runner, receiver: CallbackReceiver):
    hanging = CallbackReceiver()
    hanging.hang = threading.Event()
    runner = make_runner(mock_seconds=0, callback_workers=4, callback_timeout_seconds=120)
    try:
        stuck = [f"stuck-{index}" for index in range(8)]
        for name in stuck:
            runner.submit(task_id=name, status_callback_url=hanging.url)
        for name in stuck:
            runner.wait_status(name, "success")
        wait_for(lambda: hanging.hanging == 2, what="the hanging receiver to hold its share of the senders")
        runner.submit(task_id="fine", status_callback_url=receiver.url)
        wait_for(lambda: len(receiver.delivered("fine")) == 2, what="the other receiver's callbacks")
        assert [item.body["status"] for item in receiver.delivered("fine")] == ["running", "success"]
        assert hanging.hanging == 2 and hanging.received == []  # still stuck: it delayed nobody else
        report = runner.client.simulate_get("/debug/actors").json
        state = next(entry["state"] for entry in report["actors"] if entry["class"] == "CallbackActor")
        [lane] = [lane for lane in state["receivers"] if lane["receiver"] == f"http://127.0.0.1:{hanging.port}"]
        assert (lane["sending"], lane["limit"], lane["ready_runs"]) == (2, 2, 6)
        hanging.hang.set()
        for name in stuck:
            wait_for(lambda name=name: len(hanging.delivered(name)) == 2, what=f"{name} after the hang ends")
            assert_in_order(hanging.for_task(name))
    finally:
        hanging.close()


def test_the_receiver_can_verify_the_signature(make_runner, receiver: CallbackReceiver):
    secret = "shared-secret-for-signing"
    runner = make_runner(mock_seconds=0, callback_secret=secret)
    receiver.responses = [503]  # the retry is signed afresh
    runner.submit(task_id="signed", status_callback_url=receiver.url, status_callback_token="tok")
    wait_for(lambda: len(receiver.delivered("signed")) == 2)
    items = receiver.for_task("signed")
    assert len(items) == 3
    for item in items:
        assert item.headers["X-Runner-Signature"].startswith("sha256=")
        assert verify_signature(secret, item.headers, item.raw)
        assert not verify_signature("another-secret", item.headers, item.raw)
        tampered = item.raw.replace(b'"exit_code"', b'"exit_kode"')
        assert tampered != item.raw and not verify_signature(secret, item.headers, tampered)
        stale = dict(item.headers, **{"X-Runner-Timestamp": str(int(item.headers["X-Runner-Timestamp"]) - 1)})
        assert not verify_signature(secret, stale, item.raw)  # the timestamp is signed too
    assert items[0].raw == items[1].raw  # a retry sends the same bytes


def test_no_signature_headers_without_a_secret(runner, receiver: CallbackReceiver):
    runner.submit(task_id="unsigned", status_callback_url=receiver.url)
    wait_for(lambda: len(receiver.delivered("unsigned")) == 2)
    for item in receiver.for_task("unsigned"):
        assert "X-Runner-Signature" not in item.headers and "X-Runner-Timestamp" not in item.headers
        assert item.headers["X-Runner-Event-Id"] == item.body["event_id"]
        assert item.headers["Content-Type"] == "application/json"


def test_pending_events_are_delivered_after_a_restart_in_order(make_runner, receiver: CallbackReceiver):
    receiver.default = 503
    runner = make_runner(mock_seconds=0, callback_max_attempts=100, callback_backoff_max_seconds=0.2)
    names = ("restart-a", "restart-b")
    for name in names:
        runner.submit(task_id=name, status_callback_url=receiver.url, status_callback_token="tok")
    before = {}
    for name in names:
        runner.wait_status(name, "success")
        before[name] = wait_for(lambda name=name: (r := runner.get(name))["callbacks"][0]["attempts"] >= 2 and r)
    runner.system.stop()
    receiver.default = 200
    second = runner.restart()
    for name in names:
        wait_for(lambda name=name: len(receiver.delivered(name)) == 2, what=f"{name}'s events after the restart")
        delivered = receiver.delivered(name)
        assert [item.body["status"] for item in delivered] == ["running", "success"]
        assert [item.body["event_id"] for item in delivered] == [e["event_id"] for e in before[name]["callbacks"]]
        assert all(item.headers["X-Runner-Token"] == "tok" for item in delivered)
        assert_in_order(receiver.for_task(name))
        record = wait_for(lambda name=name: callbacks_settled(second, name, 2))
        assert record["callbacks"][0]["attempts"] > before[name]["callbacks"][0]["attempts"]


def test_pending_events_survive_a_kill_of_the_service(tmp_path: Path, receiver: CallbackReceiver):
    receiver.default = 503
    env = {"HOST_RUNNER_MOCK_SECONDS": "0", "HOST_RUNNER_CALLBACK_BACKOFF_SECONDS": "0.05",
           "HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS": "0.2", "HOST_RUNNER_CALLBACK_MAX_ATTEMPTS": "100"}
    process, base = start_service(tmp_path, **env)
    try:
        for index in range(3):
            requests.post(f"{base}/tasks", json={"task_id": f"kill-{index}", "run_id": "r", "prompt": "p",
                                                 "status_callback_url": receiver.url}, timeout=10)
        for index in range(3):
            wait_for(lambda index=index: [e["state"] for e in requests.get(
                f"{base}/tasks/kill-{index}", timeout=5).json()["callbacks"]] == ["pending", "pending"])
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # master and worker, no chance to clean up
        process.wait(timeout=10)
    receiver.default = 200
    process, base = start_service(tmp_path, **env)
    try:
        for index in range(3):
            name = f"kill-{index}"
            wait_for(lambda name=name: len(receiver.delivered(name)) == 2, what=f"{name} after the kill")
            assert [item.body["status"] for item in receiver.delivered(name)] == ["running", "success"]
            assert_in_order(receiver.for_task(name))
    finally:
        assert stop_service(process) == 0


def test_event_ids_let_the_receiver_deduplicate(make_runner, receiver: CallbackReceiver):
    receiver.resets = 1  # the first event arrives, but its answer is lost: the runner must send it again
    runner = make_runner(mock_seconds=0)
    runner.submit(task_id="dedup", status_callback_url=receiver.url)
    runner.submit(task_id="dedup-2", status_callback_url=receiver.url)
    wait_for(lambda: len(receiver.delivered("dedup")) == 2 and len(receiver.delivered("dedup-2")) == 2)
    reset = next(item for item in receiver.received if item.code == 0)
    again = [item for item in receiver.for_task(reset.body["task_id"])
             if item.body["event_id"] == reset.body["event_id"]]
    assert len(again) == 2 and again[0].raw == again[1].raw  # the same event, byte for byte
    seen: dict[str, dict[str, Any]] = {}
    for item in receiver.received:
        assert item.headers["X-Runner-Event-Id"] == item.body["event_id"]
        seen.setdefault(item.body["event_id"], item.body)
    assert len(seen) == 4  # two runs × two events, each id unique
    per_task = {name: [body["status"] for body in seen.values() if body["task_id"] == name]
                for name in ("dedup", "dedup-2")}
    assert per_task == {"dedup": ["running", "success"], "dedup-2": ["running", "success"]}


def test_a_queued_task_canceled_before_it_ran_reports_canceled_first(make_runner, receiver: CallbackReceiver):
    runner = shell_runner(make_runner, "sleep 1000", max_concurrency=1)
    runner.submit(task_id="blocker")
    runner.wait_status("blocker", "running")
    runner.submit(task_id="never-ran", status_callback_url=receiver.url)
    assert runner.cancel("never-ran").json["status"] == "canceled"
    wait_for(lambda: len(receiver.delivered("never-ran")) == 1)
    body = receiver.delivered("never-ran")[0].body
    assert (body["status"], body["sequence"], body["message"]) == ("canceled", 1, "canceled by api")
    runner.cancel("blocker")


def test_callback_tails_are_at_most_64_kib(make_runner, receiver: CallbackReceiver):
    script = "head -c 200000 /dev/zero | tr '\\0' x; head -c 100000 /dev/zero | tr '\\0' y >&2"
    runner = shell_runner(make_runner, script)
    runner.submit(task_id="big", status_callback_url=receiver.url)
    wait_for(lambda: len(receiver.delivered("big")) == 2)
    final = receiver.delivered("big")[-1].body
    assert final["stdout"] == "x" * 65536 and final["stderr"] == "y" * 65536


def test_token_and_secret_never_appear_in_a_response_or_a_log(make_runner, receiver: CallbackReceiver, caplog):
    caplog.set_level(logging.DEBUG)
    runner = make_runner(mock_seconds=0, callback_secret="secret-never-shown")
    receiver.responses = [503, 400]
    runner.submit(task_id="quiet", status_callback_url=receiver.url, status_callback_token="token-never-shown")
    wait_for(lambda: callbacks_settled(runner, "quiet", 2))
    shown = runner.client.simulate_get("/tasks/quiet").text + runner.client.simulate_get("/tasks").text
    assert "callbacks" in shown and "/callback" not in shown  # states yes, the URL no
    for secret in ("secret-never-shown", "token-never-shown"):
        assert secret not in shown
        assert secret not in caplog.text
    assert "retry 1" in caplog.text and "gave up" in caplog.text  # the log did speak about them


@pytest.mark.parametrize("code,retried", [(408, True), (429, True), (500, True), (404, False), (422, False)])
def test_which_answers_are_retried(runner, receiver: CallbackReceiver, code: int, retried: bool):
    receiver.responses = [code]
    runner.submit(task_id="answers", status_callback_url=receiver.url)
    record = wait_for(lambda: callbacks_settled(runner, "answers", 2))
    first = record["callbacks"][0]
    assert (first["state"], first["attempts"]) == (("delivered", 2) if retried else ("failed", 1))
