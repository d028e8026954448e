"""The event stream over real HTTP, from the real gunicorn service: per-task order under load, resume with
Last-Event-ID (across a restart too), a stalled client cut off without slowing another, overflow, keep-alive,
shutdown, the follower limit and the token."""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from support.paths import FAKE_BIN
from support.service import start_service, stop_service
from support.sse import StreamReader
from support.waiting import wait_for

JSON = {"Content-Type": "application/json"}
AGENT = {"HOST_RUNNER_EXECUTOR": "agent", "HOST_RUNNER_AGENT_CMD": f"{sys.executable} {FAKE_BIN / 'fake-agent-runner'}"}


class Services:
    """The real service, started with settings and restarted on the same data directory; stopped after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.process: Any = None
        self.env: dict[str, str] = {}

    def start(self, **env: str) -> str:
        self.env = env
        self.process, base = start_service(self.tmp_path, **env)
        return base

    def stop(self) -> int:
        return stop_service(self.process)

    def restart(self) -> str:
        """SIGTERM (streams end, tasks are left for the next start), then the same settings again."""
        assert self.stop() == 0
        return self.start(**self.env)


@pytest.fixture
def services(tmp_path: Path):
    started = Services(tmp_path)
    yield started
    if started.process is not None and started.process.poll() is None:
        started.stop()


def submit(base: str, task_id: str, prompt: str = "hi", **body: Any) -> None:
    answer = requests.post(f"{base}/tasks/submit", json={"task_id": task_id, "run_id": "r", "prompt": prompt, **body},
                           headers=JSON, timeout=30)
    assert answer.status_code == 202, answer.text


def all_events(base: str, **params: Any) -> list[dict[str, Any]]:
    """Every event kept, read as JSON pages."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = requests.get(f"{base}/events", params={"after": after, "limit": 1000, **params}, timeout=30).json()
        events += page["events"]
        if not page["events"]:
            return events
        after = page["next_after"]


def by_task(reader: StreamReader) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for event in reader.of_kind("status"):
        seen.setdefault(event.data["task_id"], []).append(event.data["status"])
    return seen


def test_a_stream_gets_the_status_events_of_100_concurrent_tasks_in_order(services):
    base = services.start(HOST_RUNNER_MOCK_SECONDS="0.05", HOST_RUNNER_MAX_CONCURRENCY="16")
    reader = StreamReader(base)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda index: submit(base, f"t{index}"), range(100)))
    wait_for(lambda: len(reader.events) >= 300, timeout=60, what="300 events")
    reader.close()
    assert reader.ids() == sorted(reader.ids()) and len(set(reader.ids())) == len(reader.ids())
    assert by_task(reader) == {f"t{index}": ["queued", "running", "success"] for index in range(100)}


def test_resuming_with_last_event_id_loses_and_repeats_nothing_also_across_a_restart(services):
    base = services.start()
    first = StreamReader(base)
    for index in range(5):
        submit(base, f"a{index}")
    wait_for(lambda: len(first.events) >= 7, what="some events")
    first.close()
    for index in range(5):
        submit(base, f"b{index}")  # while nobody listens
    second = StreamReader(base, last_event_id=first.ids()[-1])
    wait_for(lambda: len(first.ids()) + len(second.ids()) >= 30, what="the rest of 30 events")
    second.close()
    base = services.restart()
    for index in range(3):
        submit(base, f"c{index}")
    third = StreamReader(base, last_event_id=second.ids()[-1])
    wait_for(lambda: len(third.ids()) >= 9, what="the events after the restart")
    third.close()
    received = first.ids() + second.ids() + third.ids()
    assert received == [event["id"] for event in all_events(base)]  # each once, in order, none missing
    assert third.of_kind("reset") == []


def streams_connected(base: str) -> float:
    metrics = requests.get(f"{base}/metrics", timeout=30).text
    line = next(line for line in metrics.splitlines() if line.startswith("host_runner_log_followers "))
    return float(line.split()[1])


def terminal_latency(base: str, reader: StreamReader, task_id: str, prompt: str) -> float:
    """Seconds from a submit to the stream's event of the task's end."""
    started = time.monotonic()
    submit(base, task_id, prompt, group=task_id)
    wait_for(lambda: by_task(reader).get(task_id, [""])[-1] == "success", timeout=60, what=f"{task_id} to end")
    index = next(i for i, e in enumerate(reader.events) if e.event == "status" and e.data["task_id"] == task_id
                 and e.data["status"] == "success")
    return reader.arrived[index] - started


def test_a_stalled_client_is_cut_off_without_slowing_another_stream(services):
    base = services.start(HOST_RUNNER_STREAM_WRITE_TIMEOUT_SECONDS="1", **AGENT)
    reader = StreamReader(base, params={"include": "progress"})
    alone = [terminal_latency(base, reader, f"alone{index}", "big:5") for index in range(3)]
    # This one never reads: 3 MB of frames fill its socket's buffers and block the server's writes to it.
    stalled = StreamReader(base, params={"include": "progress"}, receive_buffer=4096, paused=True)
    wait_for(lambda: streams_connected(base) == 2, what="both streams to be connected")
    busy = terminal_latency(base, reader, "big", "big:30")
    beside = [terminal_latency(base, reader, f"beside{index}", "big:5") for index in range(3)]
    # The stalled stream is cut off once it took nothing for 1 s: its thread and slot are free again.
    wait_for(lambda: streams_connected(base) == 1, timeout=30, what="the stalled stream to be cut off")
    print(f"submit -> end event, s: alone {statistics.median(alone):.3f}, beside a stalled client "
          f"{statistics.median(beside):.3f} (the 3 MB task: {busy:.3f})")
    assert by_task(reader)["big"] == ["queued", "running", "success"]
    assert len(reader.of_kind("output")) == 3 * 5 + 30 + 3 * 5
    reader.close()
    stalled.close()


def test_a_client_too_far_behind_gets_overflow_and_resumes_from_its_last_id(services):
    base = services.start(HOST_RUNNER_STREAM_MAX_BEHIND="10", **AGENT)
    slow = StreamReader(base, params={"include": "progress"}, receive_buffer=4096, paused=True)
    wait_for(lambda: streams_connected(base) == 1, what="the stream to be connected")
    submit(base, "big", "big:40", group="g")  # 40 frames of 100 kB: the server's writes block on this client
    wait_for(lambda: requests.get(f"{base}/tasks/big", timeout=30).json()["status"] == "success", timeout=60,
             what="the task to end")
    slow.resume()
    assert slow.ended.wait(60), "the stream did not end"
    assert slow.events[-1].event == "overflow" and slow.events[-1].data["after"] == slow.ids()[-1]
    rest = StreamReader(base, params={"include": "progress"}, last_event_id=slow.ids()[-1])
    expected = [event["id"] for event in all_events(base, include="progress")]
    wait_for(lambda: slow.ids() + rest.ids() == expected, what="every event exactly once")
    rest.close()


def test_keep_alive_comments_and_streams_end_when_the_runner_stops(services):
    base = services.start(HOST_RUNNER_STREAM_KEEPALIVE_SECONDS="0.3")
    reader = StreamReader(base)
    wait_for(lambda: reader.comments >= 3, what="keep-alive comments")  # ": connected", then keep-alives
    assert services.stop() == 0  # the stream does not hold up a graceful stop
    assert reader.ended.wait(10)
    assert reader.error is None  # it ended cleanly, not cut


def test_streams_count_against_the_follower_limit_and_need_the_token(services):
    base = services.start(HOST_RUNNER_MAX_LOG_FOLLOWERS="1", HOST_RUNNER_API_TOKEN="t0ken")
    token = {"Authorization": "Bearer t0ken"}
    assert StreamReader(base).status_code == 401
    first = StreamReader(base, headers=token)
    assert first.status_code == 200
    refused = StreamReader(base, headers=token)
    assert refused.status_code == 429
    assert "HOST_RUNNER_MAX_LOG_FOLLOWERS" in refused.response.json()["detail"]
    first.close()  # the server notices the client left and frees its slot
    wait_for(lambda: (reader := StreamReader(base, headers=token)).status_code == 200 and reader, timeout=15,
             what="the slot to be free again").close()
