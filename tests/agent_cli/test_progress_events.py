"""Progress events of an agent CLI run (the real codex CLI against the Responses-API stand-in): its messages,
commands and file changes reach the event stream (``?include=progress``) always, and the callback URL only when
the task asked for them (``status_callback_events``), coalesced, and never after the terminal status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.model_server import ModelServer, Reply, codex_settings, custom_tool_call, function_call, message
from support.model_server import require_codex
from support.runner import callbacks_settled
from support.waiting import wait_for

PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+hello\n*** End Patch\n"
SCRIPT = [
    Reply([function_call("exec_command", {"cmd": "echo one", "tty": False})]),
    Reply([function_call("exec_command", {"cmd": "echo two", "tty": False}, call_id="call-2")]),
    Reply([custom_tool_call("apply_patch", PATCH)]),
    Reply([message("done")]),
]


@pytest.fixture
def model() -> Any:
    server = ModelServer()
    yield server
    server.close()


def progress_items(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for body in bodies if body["status"] == "progress" for item in body["progress"]]


def test_progress_reaches_the_stream_always_and_callbacks_when_asked(make_runner, model, tmp_path: Path, receiver):
    config, env = codex_settings(require_codex(), model, tmp_path / "codex-home", "gpt-5.5")
    runner = make_runner(env=env, **config)
    project = tmp_path / "project"
    project.mkdir()
    workspace = {"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]}
    for task_id, events in (("asked", ["status", "progress"]), ("plain", None)):
        model.script = list(SCRIPT)
        body = {"status_callback_events": events} if events else {}
        answer = runner.submit(task_id=task_id, prompt="go", execution_mode="shared-workspace", workspace=workspace,
                               status_callback_url=receiver.url, **body)
        assert answer.status_code == 202, answer.text
        runner.wait_status(task_id, "success", timeout=120)
        (project / "notes.txt").unlink()

    stream = runner.client.simulate_get("/events", params={"include": "progress"}, headers=runner.headers()).json
    for task_id in ("asked", "plain"):
        bodies = [event["data"] for event in stream["events"] if event["task_id"] == task_id]
        items = progress_items(bodies)
        assert [item["type"] for item in items] == ["command", "command", "file_change", "agent_message"], items
        assert items[0]["command"] == "/bin/bash -lc 'echo one'" and items[0]["exit_code"] == 0
        assert items[2] == {"type": "file_change", "path": str(project / "notes.txt"), "kind": "add"}
        assert items[3] == {"type": "agent_message", "text": "done"}
        statuses = [body["status"] for body in bodies]
        assert statuses[-1] == "success" and "progress" not in statuses[statuses.index("success"):]
    # without include=progress the stream has status events only
    plain = runner.client.simulate_get("/events", headers=runner.headers()).json["events"]
    assert {event["event"] for event in plain} == {"status"}

    settled = wait_for(lambda: callbacks_settled(runner, "plain", 2), timeout=30)
    assert settled is not None  # the default: running and success, as the contract has it
    asked = wait_for(lambda: (r := runner.get("asked")) and all(e["state"] != "pending" for e in r["callbacks"])
                     and r, timeout=30)
    bodies = [received.body for received in receiver.delivered("asked")]
    assert progress_items(bodies) == progress_items([e["data"] for e in stream["events"] if e["task_id"] == "asked"])
    assert [body["status"] for body in bodies][-1] == "success" and len(asked["callbacks"]) == len(bodies)
    sequences = [body["sequence"] for body in bodies]
    assert sequences == sorted(sequences)  # one ordered outbox with the status events
