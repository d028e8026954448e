"""The claude executor with the REAL Claude Code CLI (pinned in .ci/run) against a scripted Anthropic Messages-API
stand-in (tests/support/anthropic_server.py): the model makes Claude Code run a real Bash command and write a real
file in the task's workspace, then answer. Under CI=true these run (the CLI missing fails them); elsewhere they
skip without it. They run as root here: see claude_settings for the permission arguments that work as root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.anthropic_server import REQUEST_COST_USD, AnthropicServer, bash, claude_settings, require_claude, text
from support.anthropic_server import write
from support.model_server import Reply
from support.processes import pids_in_group, sleepers
from support.runner import Runner, callbacks_settled, in_project
from support.waiting import wait_for

FINAL = "All done: made.txt and notes.txt are there."


@pytest.fixture
def model() -> Any:
    server = AnthropicServer()
    yield server
    server.close()


def claude_runner(make_runner: Any, model: AnthropicServer, tmp_path: Path, args: tuple[str, ...] = ()) -> Runner:
    config, env = claude_settings(require_claude(), model, tmp_path / "claude-home", args)
    return make_runner(env=env, **config)


def test_claude_runs_a_command_writes_a_file_and_answers(make_runner, model, tmp_path: Path, receiver):
    body = in_project(tmp_path)
    project = Path(body["workspace"]["project_root"])
    model.script = [
        Reply([bash("echo hi > made.txt && echo ran")]),
        Reply([bash("ls missing-file", "toolu_bash_2")]),
        Reply([text("Writing the notes."), write(str(project / "notes.txt"), "hello from the model\n")]),
        Reply([text(FINAL)]),
    ]
    runner = claude_runner(make_runner, model, tmp_path)
    runner.submit(task_id="cl", prompt="--make two files", status_callback_url=receiver.url, **body)
    record = runner.wait_status("cl", "success", "failed", timeout=120)
    assert record["status"] == "success", record
    assert (project / "made.txt").read_text() == "hi\n"
    assert (project / "notes.txt").read_text() == "hello from the model\n"
    assert len(model.requests) == 4
    first = model.requests[0]["messages"][0]["content"]
    assert any(block.get("text") == "--make two files" for block in first)  # after "--": the prompt, not an option
    assert record["final_message"] == FINAL and record["session_id"]
    assert "resumed_session_id" not in record
    assert record["usage"] == {"input_tokens": 120 * 4, "cached_input_tokens": 20 * 4, "output_tokens": 7 * 4}
    assert record["cost_usd"] == pytest.approx(REQUEST_COST_USD * 4)
    assert record["files_changed"] == [{"path": str(project / "notes.txt"), "kind": "add"}]
    assert record["commands"] == [{"command": "echo hi > made.txt && echo ran", "exit_code": 0},
                                  {"command": "ls missing-file", "exit_code": 1}]
    raw = Path(record["logs"]["stdout"]).read_text()  # the full event stream stays in the run directory
    assert record["events"] == len(raw.splitlines()) and '"type":"result"' in raw
    assert "$ echo hi > made.txt && echo ran  (exit 0)\n  ran\n" in record["stdout"]
    assert FINAL in record["stdout"] and '"type"' not in record["stdout"]
    assert record["handoff"] == {"summary": FINAL, "details": None}
    assert "failure_reason" not in record
    assert wait_for(lambda: callbacks_settled(runner, "cl", 2), timeout=30) is not None
    final = receiver.received[-1].body
    assert final["status"] == "success" and final["handoff"] == {"summary": FINAL, "details": None}


def test_max_turns_fails_with_its_reason(make_runner, model, tmp_path: Path):
    model.script = [Reply([bash("echo one")]), Reply([text("never asked for")])]
    runner = claude_runner(make_runner, model, tmp_path, ("--max-turns", "1"))
    runner.submit(task_id="mt", **in_project(tmp_path))
    record = runner.wait_status("mt", "failed", "success", timeout=120)
    assert record["status"] == "failed" and record["failure_reason"] == "max_turns"
    assert record["message"] == "Reached maximum number of turns (1)"
    assert record["commands"] == [{"command": "echo one", "exit_code": 0}]
    assert len(model.requests) == 1


@pytest.mark.parametrize(("status", "reason"), [(500, "agent_error"), (401, "auth_required")])
def test_a_model_server_error_fails_with_its_reason(make_runner, model, tmp_path: Path, receiver, status, reason):
    model.script = [Reply(status=status)]
    runner = claude_runner(make_runner, model, tmp_path)
    runner.submit(task_id="err", status_callback_url=receiver.url, **in_project(tmp_path))
    record = runner.wait_status("err", "failed", "success", timeout=120)
    assert record["status"] == "failed" and record["failure_reason"] == reason
    assert f"API Error: {status}" in record["message"]  # Claude Code's own account, not "exited with code 1"
    assert record["final_message"] is None and record["handoff"] is None
    wait_for(lambda: callbacks_settled(runner, "err", 2), timeout=30)
    final = receiver.received[-1].body
    assert final["status"] == "failed" and final["handoff"] is None


def test_resume_continues_the_session_with_its_history(make_runner, model, tmp_path: Path):
    model.script = [Reply([text("first answer")]), Reply([text("second answer")])]
    runner = claude_runner(make_runner, model, tmp_path)
    body = in_project(tmp_path)
    runner.submit(task_id="rs", run_id="run-1", prompt="remember the word zebra", **body)
    first = runner.wait_status("rs", "success", "failed", timeout=120)
    assert first["status"] == "success" and first["session_id"]
    runner.submit(task_id="rs", run_id="run-2", prompt="what was the word?", session_id=first["session_id"], **body)
    second = wait_for(lambda: (record := runner.get("rs"))["run_id"] == "run-2"
                      and record["status"] in ("success", "failed") and record, timeout=120)
    assert second["status"] == "success", second
    assert second["resumed_session_id"] == first["session_id"]
    assert second["session_id"] == first["session_id"]  # Claude Code 2.1.92 keeps the id on --resume
    assert second["final_message"] == "second answer"
    history = json.dumps(model.requests[1]["messages"])
    assert "remember the word zebra" in history and "first answer" in history and "what was the word?" in history


def test_cancel_mid_turn_leaves_no_process(make_runner, model, tmp_path: Path):
    marker = "313.7"  # a sleep nobody else runs
    model.script = [Reply([bash(f"sleep {marker}")])]
    runner = claude_runner(make_runner, model, tmp_path)
    runner.submit(task_id="long", **in_project(tmp_path))
    record = runner.wait_status("long", "running", timeout=60)
    wait_for(lambda: sleepers(marker), timeout=120)
    assert runner.cancel("long").status_code == 200
    record = runner.wait_status("long", "canceled", timeout=60)
    assert record["cancel_reason"] == "api" and "failure_reason" not in record
    assert pids_in_group(record["pid"]) == []
    assert sleepers(marker) == []
