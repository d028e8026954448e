"""GET /tasks/{id}/logs: bytes from an offset, and following a running task (through the real gunicorn)."""

from __future__ import annotations

from pathlib import Path

import requests

from host_runner.client.api_client import Client
from support.openapi_check import validate
from support.runner import shell_runner
from support.service import start_service, stop_service
from support.waiting import wait_for


def test_logs_from_an_offset_with_the_next_offset(make_runner):
    runner = shell_runner(make_runner, "printf 'abcdefghij'; printf 'oops' >&2")
    runner.submit(task_id="l1")
    runner.wait_status("l1", "success")
    get = runner.client.simulate_get

    whole = get("/tasks/l1/logs")
    assert whole.status_code == 200 and whole.content == b"abcdefghij"
    assert whole.headers["content-type"] == "application/octet-stream"
    assert (whole.headers["x-next-offset"], whole.headers["x-log-size"]) == ("10", "10")
    assert (whole.headers["x-run-id"], whole.headers["x-task-status"]) == ("run-1", "success")
    part = get("/tasks/l1/logs", params={"offset": 3, "limit": 4})
    assert part.content == b"defg" and part.headers["x-next-offset"] == "7" and part.headers["x-log-offset"] == "3"
    past = get("/tasks/l1/logs", params={"offset": 100})
    assert past.content == b"" and past.headers["x-next-offset"] == "100"
    assert get("/tasks/l1/logs", params={"stream": "stderr"}).content == b"oops"
    # A finished run's log followed: everything at once, then the response ends.
    assert get("/tasks/l1/logs", params={"follow": "true", "offset": 2}).content == b"cdefghij"


def test_logs_of_an_earlier_run_and_errors(make_runner):
    runner = shell_runner(make_runner, 'printf "%s" "$HOST_RUNNER_RUN_ID"')
    runner.submit(task_id="l2", run_id="first")
    runner.wait_status("l2", "success")
    runner.submit(task_id="l2", run_id="second")
    runner.wait_status("l2", "success")
    get = runner.client.simulate_get
    assert get("/tasks/l2/logs").content == b"second"
    assert get("/tasks/l2/logs", params={"run_id": "first"}).content == b"first"
    assert get("/tasks/l2/logs", params={"run_id": "third"}).status_code == 404
    assert get("/tasks/nope/logs").json["detail"] == "no task nope"
    for name, value in (("stream", "both"), ("offset", "-1"), ("offset", "x"), ("limit", "0"), ("follow", "maybe")):
        result = get("/tasks/l2/logs", params={name: value})
        assert result.status_code == 422 and result.json["field"] == name, (name, value, result.text)


def test_a_queued_task_has_an_empty_log(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f"while [ ! -e {go} ]; do sleep 0.05; done", max_concurrency=1)
    runner.submit(task_id="first")
    runner.submit(task_id="waiting")
    result = runner.client.simulate_get("/tasks/waiting/logs")
    assert result.status_code == 200 and result.content == b"" and result.headers["x-task-status"] == "queued"
    go.touch()
    runner.wait_status("waiting", "success")


GATED = "echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second; echo bye >&2"


def test_following_a_log_receives_lines_while_the_task_runs_and_ends_when_it_ends(tmp_path: Path):
    go = tmp_path / "go"
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                  HOST_RUNNER_CMD_TEMPLATE=f"sh -c '{GATED.format(go=go)}'")
    client = Client(base, on_response=validate)
    try:
        client.submit({"task_id": "f1", "run_id": "r1", "prompt": "p"})
        received = b""
        chunks = client.follow("f1")
        while b"first\n" not in received:
            received += next(chunks)
        assert client.get("f1")["status"] == "running", "the line arrived while the task runs"
        go.touch()
        received += b"".join(chunks)  # ends by itself when the run ends
        assert received == b"first\nsecond\n"
        assert client.get("f1")["status"] == "success"
        assert b"".join(client.follow("f1", stream="stderr")) == b"bye\n"
        assert b"".join(client.follow("f1", offset=6)) == b"second\n"
    finally:
        go.touch()  # whatever happened, the task can end
        assert stop_service(process) == 0


def metric(client: Client, name: str) -> float:
    for line in client.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def follower_threads(client: Client) -> list[str]:
    return [thread["name"] for thread in client.debug_threads()["threads"]
            if any(frame["function"] == "_follow" for frame in thread["stack"])]


def test_a_follower_that_disconnects_frees_its_thread_and_followers_are_capped(tmp_path: Path):
    go = tmp_path / "go"
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_MAX_LOG_FOLLOWERS="1",
                                  HOST_RUNNER_CMD_TEMPLATE=f"sh -c '{GATED.format(go=go)}'")
    client = Client(base, on_response=validate)
    try:
        client.submit({"task_id": "f2", "run_id": "r1", "prompt": "p"})
        follower = requests.get(f"{base}/tasks/f2/logs", params={"follow": "true"}, stream=True, timeout=30)
        assert follower.status_code == 200 and follower.headers.get("Transfer-Encoding") == "chunked"
        chunks = follower.iter_content(chunk_size=None)  # kept: dropping the iterator closes the connection
        assert next(chunks) == b"first\n"
        assert metric(client, "host_runner_log_followers") == 1
        assert len(follower_threads(client)) == 1
        refused = requests.get(f"{base}/tasks/f2/logs", params={"follow": "true"}, timeout=30)
        assert refused.status_code == 429 and "HOST_RUNNER_MAX_LOG_FOLLOWERS" in refused.json()["detail"]
        validate(refused, False)

        follower.close()  # the client goes away while the task still runs and prints nothing
        wait_for(lambda: not follower_threads(client), timeout=20, what="the follower's thread to be freed")
        assert metric(client, "host_runner_log_followers") == 0
        assert client.get("f2")["status"] == "running"
        again = requests.get(f"{base}/tasks/f2/logs", params={"follow": "true"}, stream=True, timeout=30)
        assert again.status_code == 200  # the slot is free again
        go.touch()
        assert b"".join(again.iter_content(chunk_size=None)) == b"first\nsecond\n"
    finally:
        go.touch()
        assert stop_service(process) == 0


def test_following_a_task_that_printed_nothing_yet_answers_at_once(tmp_path: Path):
    go = tmp_path / "go"
    script = f"while [ ! -e {go} ]; do sleep 0.05; done; echo late"
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE=f"sh -c '{script}'")
    try:
        requests.post(f"{base}/tasks", json={"task_id": "quiet", "run_id": "r1", "prompt": "p"}, timeout=10)
        wait_for(lambda: requests.get(f"{base}/tasks/quiet", timeout=5).json()["status"] == "running")
        # The headers come before any output does (the read timeout would fire otherwise).
        follower = requests.get(f"{base}/tasks/quiet/logs", params={"follow": "true"}, stream=True, timeout=20)
        assert follower.status_code == 200 and follower.headers["X-Task-Status"] == "running"
        go.touch()
        assert b"".join(follower.iter_content(chunk_size=None)) == b"late\n"
    finally:
        go.touch()
        assert stop_service(process) == 0


def test_stopping_the_server_ends_a_follower_instead_of_waiting_for_the_task(tmp_path: Path):
    go = tmp_path / "go"
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                  HOST_RUNNER_CMD_TEMPLATE=f"sh -c '{GATED.format(go=go)}'")
    client = Client(base)
    try:
        client.submit({"task_id": "f3", "run_id": "r1", "prompt": "p"})
        follower = requests.get(f"{base}/tasks/f3/logs", params={"follow": "true"}, stream=True, timeout=60)
        chunks = follower.iter_content(chunk_size=None)
        assert next(chunks) == b"first\n"
    finally:
        code = stop_service(process)
        go.touch()  # only now: the follower must have ended without the task ending
    assert b"".join(chunks) == b""  # the response ended cleanly, without the task having ended
    assert code == 0
    log = (tmp_path / "gunicorn.log").read_text()
    assert "host-runner stopped" in log, "the worker stopped its actors instead of being killed after the timeout"
