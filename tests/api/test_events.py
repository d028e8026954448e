"""The event log as JSON pages (``GET /events``, ``GET /tasks/{id}/events`` without ``text/event-stream``), and the
stream's first steps read in-process; the stream over real HTTP is tests/service/test_event_stream.py."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import actors.retention
from api.event_stream import EventStream
from host_runner.store.event_log import EventFilter, StreamEvent
from support.paths import FAKE_BIN
from support.receivers import CallbackReceiver
from support.runner import Runner, callbacks_settled
from support.waiting import wait_for

AGENT_CMD = (sys.executable, str(FAKE_BIN / "fake-agent-runner"))


def page(runner: Runner, path: str = "/events", **params: Any) -> Any:
    result = runner.client.simulate_get(path, params={k: str(v) for k, v in params.items()}, headers=runner.headers())
    return result


def statuses(events: list[dict[str, Any]], task_id: str) -> list[str]:
    return [event["data"]["status"] for event in events if event["task_id"] == task_id]


def test_every_status_change_is_an_event_with_or_without_a_callback_url(runner: Runner, receiver: CallbackReceiver):
    runner.submit(task_id="plain")
    runner.submit(task_id="called", status_callback_url=receiver.url, status_callback_token="secret-token")
    runner.wait_status("plain", "success")
    runner.wait_status("called", "success")
    answer = page(runner).json
    assert statuses(answer["events"], "plain") == ["queued", "running", "success"]
    assert statuses(answer["events"], "called") == ["queued", "running", "success"]
    ids = [event["id"] for event in answer["events"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert answer["next_after"] == ids[-1] and answer["latest"] == ids[-1] and answer["reset"] is False
    # The body is what the callback of the same change carried (less its delivery identity); never the token.
    wait_for(lambda: callbacks_settled(runner, "called", 2))
    delivered = [r.body for r in receiver.delivered("called")]
    streamed = [e["data"] for e in answer["events"] if e["task_id"] == "called" and e["data"]["status"] != "queued"]
    assert [{k: v for k, v in body.items() if k not in ("event_id", "sequence")} for body in delivered] == streamed
    assert "secret-token" not in json.dumps(answer)


def test_pages_filters_and_the_task_route(runner: Runner, tmp_path: Path):
    for index in range(3):
        root = tmp_path / f"p{index}"
        root.mkdir()
        answer = runner.submit(task_id=f"t{index}", execution_mode="shared-workspace",
                               workspace={"project_id": index % 2, "project_root": str(root), "lock_paths": [str(root)]})
        assert answer.status_code == 202, answer.text
    for index in range(3):
        runner.wait_status(f"t{index}", "success")
    first = page(runner, limit=4).json
    assert len(first["events"]) == 4 and first["next_after"] == first["events"][-1]["id"]
    rest = page(runner, after=first["next_after"], limit=100).json
    assert len(first["events"]) + len(rest["events"]) == 9
    assert page(runner, after=rest["next_after"]).json["events"] == []
    assert {e["task_id"] for e in page(runner, project_id=1).json["events"]} == {"t1"}
    # One running event per task; the three start side by side, so in no particular order.
    assert sorted(e["task_id"] for e in page(runner, status="running").json["events"]) == ["t0", "t1", "t2"]
    one = page(runner, "/tasks/t2/events").json["events"]
    assert statuses(one, "t2") == ["queued", "running", "success"] and {e["task_id"] for e in one} == {"t2"}
    assert page(runner, task_id="t0").json["events"] == page(runner, "/tasks/t0/events").json["events"]
    # A filtered page that is not full still moves on to the newest id, so polling does not rescan.
    assert page(runner, task_id="t0").json["next_after"] == rest["latest"]


def test_agent_frames_are_progress_events(make_runner):
    runner = make_runner(executor="agent", agent_cmd=AGENT_CMD)
    runner.submit(task_id="a", prompt="frames:2", group="g")
    runner.wait_status("a", "success")
    assert [e["event"] for e in page(runner).json["events"]] == ["status"] * 3
    events = page(runner, include="progress").json["events"]
    assert [e["event"] for e in events] == ["status", "status", "output", "output", "status"]
    assert [e["data"]["output"]["result"] for e in events if e["event"] == "output"] == ["frame 1", "frame 2"]


def test_bad_parameters_and_unknown_tasks(runner: Runner):
    for params, field in (({"status": "done"}, "status"), ({"include": "all"}, "include"),
                          ({"after": "-1"}, "after"), ({"after": "x"}, "after"), ({"limit": "0"}, "limit")):
        answer = page(runner, **params)
        assert answer.status_code == 422 and answer.json["field"] == field, (params, answer.text)
    answer = runner.client.simulate_get("/events", headers={"Last-Event-ID": "abc", **runner.headers()})
    assert answer.status_code == 422 and answer.json["field"] == "Last-Event-ID"
    assert page(runner, "/tasks/nope/events").status_code == 404


def test_the_token_is_required(make_runner):
    runner = make_runner(api_token="t0ken")
    assert runner.client.simulate_get("/events").status_code == 401
    assert runner.client.simulate_get("/events", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_events_removed_by_retention_are_reported_as_a_reset(make_runner, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(actors.retention, "LONGEST_PAUSE", 0.5)  # a sweep every half second
    runner = make_runner(retention_max_runs=1)
    for index in range(3):
        runner.submit(task_id=f"t{index}")
        runner.wait_status(f"t{index}", "success")
    wait_for(lambda: page(runner, "/tasks/t0/events").status_code == 404, 15, what="t0 to be pruned")
    answer = page(runner).json
    assert answer["reset"] is True and answer["floor"] >= 3
    assert "t0" not in {event["task_id"] for event in answer["events"]}
    assert page(runner, after=answer["floor"]).json["reset"] is False
    # A stream from before the floor says so first.
    assert runner.system.store is not None
    stream = EventStream(runner.system.store.events, 0, EventFilter(), runner.config, gone=lambda: False,
                         stopping=lambda: False, release=lambda: None)
    chunks = iter(stream)
    assert next(chunks) == b": connected\n\n"
    reset = next(chunks).decode()
    assert reset.startswith("event: reset\ndata: ") and '"after":0' in reset
    assert next(chunks).decode().startswith("id: ")
    stream.close()


class BurstLog:
    """An event log in which 30 events are committed between a stream's look at ``latest`` and its read of the
    page: the page then holds them all (what a busy runner can do within a moment)."""

    def __init__(self) -> None:
        self.latest = 0

    def floor(self) -> int:
        return 0

    def after(self, after: int, wanted: EventFilter, limit: int) -> list[StreamEvent]:
        if self.latest == 0:
            self.latest = 30
        return [StreamEvent(n, "status", "t", "1", "running", "2026-12-02T00:00:00.000000Z", "{}")
                for n in range(after + 1, self.latest + 1)][:limit]

    def wait(self, after: int, timeout: float) -> bool:
        return False


def test_a_client_behind_within_one_page_gets_overflow(runner):
    """Behind is behind whatever page the events came in: a page read at once is not delivered whole to a client
    that fell more than HOST_RUNNER_STREAM_MAX_BEHIND events behind while it was read."""
    config = replace(runner.config, stream_max_behind=10)
    log: Any = BurstLog()
    stream = EventStream(log, 0, EventFilter(), config, gone=lambda: False, stopping=lambda: False,
                         release=lambda: None)
    chunks = iter(stream)
    assert next(chunks) == b": connected\n\n"
    assert next(chunks).startswith(b"id: 1\n")
    overflow = next(chunks).decode()
    assert overflow.startswith("event: overflow\n") and '"after":1' in overflow
    stream.close()
