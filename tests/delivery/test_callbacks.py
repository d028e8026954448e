"""Status callbacks reach a real HTTP receiver on 127.0.0.1, in order, with the X-Runner-Token header."""

from __future__ import annotations

from support.receivers import CallbackReceiver
from support.runner import shell_runner
from support.waiting import wait_for


def test_callbacks_arrive_in_order_with_the_token(runner, receiver: CallbackReceiver):
    runner.submit(task_id="cb", status_callback_url=receiver.url, status_callback_token="tok-123")
    runner.wait_status("cb", "success")
    events = wait_for(lambda: len(receiver.for_task("cb")) == 2 and receiver.for_task("cb"), what="2 callbacks")
    assert [event.body["status"] for event in events] == ["running", "success"]
    assert [event.body["sequence"] for event in events] == [1, 2]
    assert all(event.headers["X-Runner-Token"] == "tok-123" for event in events)
    assert len({event.body["event_id"] for event in events}) == 2
    final = events[-1].body
    assert final["exit_code"] == 0 and final["stdout"] == "hello" and final["run_id"] == "run-1"
    assert final["finished_at"] and "container_id" in final and "worktree_cleanup_attempted" in final


def test_no_token_header_without_a_token_and_token_never_shown(runner, receiver: CallbackReceiver):
    runner.submit(task_id="notok", status_callback_url=receiver.url)
    record = runner.wait_status("notok", "success")
    events = wait_for(lambda: len(receiver.for_task("notok")) == 2 and receiver.for_task("notok"))
    assert all("X-Runner-Token" not in event.headers for event in events)
    runner.submit(task_id="secret", status_callback_url=receiver.url, status_callback_token="hidden-value")
    record = runner.wait_status("secret", "success")
    assert "hidden-value" not in str(record)
    listed = runner.client.simulate_get("/tasks").text
    assert "hidden-value" not in listed


def test_canceled_and_failed_callbacks(make_runner, receiver: CallbackReceiver):
    runner = shell_runner(make_runner, 'if [ "$HOST_RUNNER_PROMPT" = fail ]; then exit 4; fi; sleep 1000')
    runner.submit(task_id="cx", status_callback_url=receiver.url)
    runner.wait_status("cx", "running")
    runner.cancel("cx")
    runner.submit(task_id="fx", prompt="fail", status_callback_url=receiver.url)
    runner.wait_status("fx", "failed")
    wait_for(lambda: len(receiver.for_task("cx")) == 2 and len(receiver.for_task("fx")) == 2)
    assert [e.body["status"] for e in receiver.for_task("cx")] == ["running", "canceled"]
    assert [e.body["status"] for e in receiver.for_task("fx")] == ["running", "failed"]
    assert receiver.for_task("fx")[-1].body["exit_code"] == 4


def test_retries_on_5xx_keep_the_order(runner, receiver: CallbackReceiver):
    receiver.responses = [503, 500]  # the first two attempts fail
    runner.submit(task_id="retry", status_callback_url=receiver.url)
    runner.wait_status("retry", "success")
    wait_for(lambda: len(receiver.for_task("retry")) == 4, what="4 attempts")
    statuses = [event.body["status"] for event in receiver.for_task("retry")]
    assert statuses == ["running", "running", "running", "success"]
    ids = [event.body["event_id"] for event in receiver.for_task("retry")]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # a retry repeats the event id so receivers can de-duplicate


def test_a_slow_receiver_does_not_delay_the_task(make_runner, receiver: CallbackReceiver):
    receiver.delay = 3
    runner = make_runner(mock_seconds=0)
    runner.submit(task_id="slowcb", status_callback_url=receiver.url)
    runner.wait_status("slowcb", "success")
    assert receiver.for_task("slowcb") == []  # the receiver is still busy with the first event
    events = wait_for(lambda: len(receiver.for_task("slowcb")) == 2 and receiver.for_task("slowcb"), timeout=15)
    assert [event.body["status"] for event in events] == ["running", "success"]


def test_attempts_use_the_environment_proxy_but_never_netrc(tmp_path, monkeypatch):
    """Sessions do not re-read the environment per request, yet HTTP_PROXY/NO_PROXY still apply (read once per
    receiver), and ~/.netrc credentials never reach a receiver."""
    import http.server
    import threading

    from host_runner.delivery.http import Sender, attempt, environment_settings
    from host_runner.store.outbox import Delivery

    seen: list[tuple[str, str | None]] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    (tmp_path / ".netrc").write_text("machine receiver.example login user password secret\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    environment_settings.cache_clear()
    try:
        delivery = Delivery("e1", "http://receiver.example/cb", None, "{}", 1)
        outcome = attempt(Sender(), delivery, None, 5)
        assert outcome.delivered, outcome
        assert seen == [("http://receiver.example/cb", None)]  # through the proxy, no netrc credentials
    finally:
        environment_settings.cache_clear()
        proxy.shutdown()
        proxy.server_close()
