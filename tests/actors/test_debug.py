"""/debug/actors and /debug/threads: what a live runner's actors own, and where its threads are."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.base import Actor, handles
from support.processes import pids_in_group
from support.runner import Runner, shell_runner
from support.waiting import wait_for


def debug_actors(runner: Runner, **params: Any) -> dict[str, Any]:
    result = runner.client.simulate_get("/debug/actors", params=params, headers=runner.headers())
    assert result.status_code == 200, result.text
    return result.json


def task_actors(report: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [entry for entry in report["actors"]
            if entry["class"] == "TaskActor" and entry["state"].get("task_id") == task_id]


def test_debug_actors_show_a_running_task_with_its_pid_the_queue_and_the_reservations(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    project = tmp_path / "project"
    project.mkdir()
    runner = shell_runner(make_runner, f"echo started; while [ ! -e {go} ]; do sleep 0.05; done", max_concurrency=1)
    workspace = {"project_root": str(project), "lock_paths": [str(project / "src")]}
    assert runner.submit(task_id="a", execution_mode="shared-workspace", workspace=workspace).status_code == 202
    assert runner.submit(task_id="b").status_code == 202
    running = runner.wait_status("a", "running")

    report = debug_actors(runner)
    assert report["not_answering"] == []
    [actor] = task_actors(report, "a")
    assert actor["answered"] and actor["inbox_depth"] == 0
    state = actor["state"]
    assert state["pid"] == running["pid"] and state["status"] == "running" and state["phase"] == "running"
    assert pids_in_group(state["pid"]), "the pid shown is the task's live process group"
    supervisor = report["supervisor"]
    assert supervisor["running"] == 1 and supervisor["max_concurrency"] == 1
    assert supervisor["queue"] == [{"task_id": "b", "run_id": "run-1"}]
    assert supervisor["running_tasks"] == [{"task_id": "a", "run_id": "run-1", "actor_urn": actor["urn"]}]
    assert report["reservations"] == [{"task_id": "a", "run_id": "run-1", "kind": "path", "label": "lock path",
                                       "key": os.path.realpath(project / "src")}]
    classes = {entry["class"] for entry in report["actors"]}
    assert {"SupervisorActor", "WorktreeRegistryActor", "CallbackActor", "TaskActor"} <= classes

    go.touch()
    runner.wait_status("a", "success")
    runner.wait_status("b", "success")
    after = wait_for(lambda: (r := debug_actors(runner)) and not task_actors(r, "a") and not task_actors(r, "b") and r,
                     what="the task actors to stop")
    assert after["supervisor"]["queue"] == [] and after["reservations"] == []


def test_debug_actors_show_callback_lanes_without_secrets(make_runner, receiver):
    receiver.responses = [500] * 100  # keeps the event pending, waiting for a retry
    runner = make_runner(callback_backoff_seconds=30.0, mock_seconds=30.0)
    url = receiver.url.replace("http://", "http://user:hunter2@") + "?signature=s3cret"
    runner.submit(task_id="cb", status_callback_url=url, status_callback_token="tok-t0ken")
    runner.wait_status("cb", "running")
    report = wait_for(lambda: (r := debug_actors(runner))["callback_lanes"] and r["callback_lanes"][0]["attempts"]
                      and r, what="a failed callback attempt")
    [lane] = report["callback_lanes"]
    assert lane["task_id"] == "cb" and lane["pending"] == 1 and lane["next_status"] == "running"
    assert lane["last_error"] == "HTTP 500"
    assert lane["url"] == receiver.url  # user info and query removed
    callbacks = next(entry["state"] for entry in report["actors"] if entry["class"] == "CallbackActor")
    assert callbacks["stats"]["attempts_failed"] >= 1 and set(callbacks["stats"]["latency"]) == {"count", "sum"}
    for secret in ("hunter2", "s3cret", "tok-t0ken"):
        assert secret not in str(report)
    runner.cancel("cb")


@dataclass(frozen=True)
class Block:
    """Test-only message: keeps the actor inside its handler until released."""


class BusyActor(Actor):
    """A real actor stuck in a handler, as a hung actor would be (capped at 30 s so a failing test ends)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    @handles(Block)
    def on_block(self, message: Block) -> None:
        self.release.wait(30)


def stack_functions(runner: Runner) -> dict[str, list[str]]:
    result = runner.client.simulate_get("/debug/threads", headers=runner.headers())
    assert result.status_code == 200
    return {thread["name"]: [frame["function"] for frame in thread["stack"]] for thread in result.json["threads"]}


def test_debug_endpoints_answer_while_an_actor_is_busy(runner):
    release = threading.Event()
    busy = BusyActor.start(release)
    try:
        busy.tell(Block())
        # /debug/threads shows where the busy actor is stuck, in its own thread.
        threads = wait_for(lambda: (t := stack_functions(runner)) and any(
            name.startswith("BusyActor") and "on_block" in functions for name, functions in t.items()) and t,
            what="the busy actor to be inside on_block")
        assert any(name.startswith("SupervisorActor") for name in threads)

        report = debug_actors(runner, timeout=0.2)
        [stuck] = report["not_answering"]
        assert stuck == {"class": "BusyActor", "urn": busy.actor_urn, "problem": "did not answer within 0.2 s"}
        entry = next(entry for entry in report["actors"] if entry["urn"] == busy.actor_urn)
        assert entry["answered"] is False and entry["state"] == {}
        assert report["supervisor"] is not None and report["supervisor"]["accepting"] is True
        assert all(entry["answered"] for entry in report["actors"] if entry["urn"] != busy.actor_urn)
        # A second report while the first question is still unanswered sees it waiting in the inbox.
        again = debug_actors(runner, timeout=0)
        assert next(e for e in again["actors"] if e["urn"] == busy.actor_urn)["inbox_depth"] >= 1
    finally:
        release.set()
        busy.stop()


def test_debug_threads_as_text_and_bad_parameters(runner):
    text = runner.client.simulate_get("/debug/threads", params={"format": "text"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "Current state of MainThread" in text.text and "SupervisorActor" in text.text
    assert runner.client.simulate_get("/debug/threads", params={"format": "xml"}).json["field"] == "format"
    for bad in ("-1", "11", "soon"):
        result = runner.client.simulate_get("/debug/actors", params={"timeout": bad})
        assert result.status_code == 422 and result.json["field"] == "timeout"
