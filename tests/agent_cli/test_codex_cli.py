"""The codex executor with the REAL codex CLI (pinned in .ci/run) against a scripted Responses-API stand-in
(tests/support/model_server.py): the model makes codex run real shell commands and write a real file in the
task's workspace, then answer. Under CI=true these run (the CLI missing fails them); elsewhere they skip
without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.model_server import Reply, codex_runner, custom_tool_call, function_call, message
from support.processes import pids_in_group, sleepers
from support.runner import callbacks_settled, in_project
from support.waiting import wait_for

PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+hello from the model\n*** End Patch\n"
FINAL = "All done: wrote made.txt and notes.txt."




def test_codex_runs_commands_writes_a_file_and_answers(make_runner, model, tmp_path: Path, receiver):
    model.script = [
        Reply([function_call("exec_command", {"cmd": "echo hi > made.txt && echo ran", "tty": False})]),
        Reply([function_call("exec_command", {"cmd": "ls missing-file", "tty": False}, call_id="call-3")]),
        Reply([custom_tool_call("apply_patch", PATCH)]),
        Reply([message(FINAL)]),
    ]
    runner = codex_runner(make_runner, model, tmp_path)
    body = in_project(tmp_path)
    project = Path(body["workspace"]["project_root"])
    runner.submit(task_id="cx", prompt="make two files", status_callback_url=receiver.url, **body)
    record = runner.wait_status("cx", "success", timeout=120)
    assert (project / "made.txt").read_text() == "hi\n"
    assert (project / "notes.txt").read_text() == "hello from the model\n"
    requests = len(model.requests)
    assert requests == 4
    assert record["final_message"] == FINAL
    assert record["session_id"]
    assert record["usage"] == {"input_tokens": 120 * requests, "cached_input_tokens": 20 * requests,
                               "output_tokens": 7 * requests}
    assert record["files_changed"] == [{"path": str(project / "notes.txt"), "kind": "add"}]
    assert record["commands"] == [
        {"command": "/bin/bash -lc 'echo hi > made.txt && echo ran'", "exit_code": 0},
        {"command": "/bin/bash -lc 'ls missing-file'", "exit_code": 2},
    ]
    raw = Path(record["logs"]["stdout"]).read_text()  # the full event stream stays in the run directory
    assert record["events"] == len(raw.splitlines()) and '"type":"turn.completed"' in raw
    # stdout is a readable transcript for the original contract's clients, not JSON
    assert "$ /bin/bash -lc 'echo hi > made.txt && echo ran'  (exit 0)" in record["stdout"]
    assert FINAL in record["stdout"] and '"type"' not in record["stdout"]
    assert record["handoff"] == {"summary": FINAL, "details": None}
    assert "failure_reason" not in record
    settled = wait_for(lambda: callbacks_settled(runner, "cx", 2), timeout=30)
    assert settled is not None
    running, final = (received.body for received in receiver.received)
    assert running["status"] == "running" and "handoff" not in running
    assert final["status"] == "success" and final["handoff"] == {"summary": FINAL, "details": None}
    assert FINAL in final["stdout"] and '"type"' not in final["stdout"]


def test_a_warning_item_does_not_fail_the_task(make_runner, model, tmp_path: Path):
    model.script = [Reply([message("fine")])]
    runner = codex_runner(make_runner, model, tmp_path, model_name="no-such-model")  # codex warns, exits 0
    runner.submit(task_id="warn", **in_project(tmp_path))
    record = runner.wait_status("warn", "success", "failed", timeout=120)
    assert record["status"] == "success" and record["final_message"] == "fine"
    assert "warning: Model metadata for `no-such-model` not found" in record["stdout"]


@pytest.mark.parametrize(("status", "reason"), [(500, "agent_error"), (401, "auth_required")])
def test_a_model_server_error_fails_with_its_reason(make_runner, model, tmp_path: Path, receiver, status, reason):
    model.script = [Reply(status=status)]
    runner = codex_runner(make_runner, model, tmp_path)
    runner.submit(task_id="err", status_callback_url=receiver.url, **in_project(tmp_path))
    record = runner.wait_status("err", "failed", timeout=120)
    assert record["failure_reason"] == reason
    assert record["exit_code"] == 1
    assert record["message"] != "exited with code 1"  # codex's own account of the failure
    assert record["handoff"] is None
    wait_for(lambda: callbacks_settled(runner, "err", 2), timeout=30)
    final = receiver.received[-1].body
    assert final["status"] == "failed" and final["handoff"] is None


def test_cancel_mid_turn_leaves_no_process(make_runner, model, tmp_path: Path):
    marker = "313.5"  # a sleep nobody else runs
    model.script = [Reply([function_call("exec_command", {"cmd": f"sleep {marker}", "tty": False,
                                                          "yield_time_ms": 600000})])]
    runner = codex_runner(make_runner, model, tmp_path)
    runner.submit(task_id="long", **in_project(tmp_path))
    record = runner.wait_status("long", "running", timeout=60)
    stdout = Path(record["logs"]["stdout"])
    wait_for(lambda: '"type":"item.started"' in stdout.read_text(), timeout=120)
    wait_for(lambda: sleepers(marker), timeout=30)
    assert runner.cancel("long").status_code == 200
    record = runner.wait_status("long", "canceled", timeout=60)
    assert record["cancel_reason"] == "api" and "failure_reason" not in record
    assert pids_in_group(record["pid"]) == []
    assert sleepers(marker) == []


def test_plain_mode_keeps_the_original_output(make_runner, model, tmp_path: Path):
    model.script = [Reply([message("plain answer")])]
    runner = codex_runner(make_runner, model, tmp_path, codex_json=False)
    runner.submit(task_id="plain", **in_project(tmp_path))
    record = runner.wait_status("plain", "success", timeout=120)
    assert record["stdout"].strip() == "plain answer"  # codex prints only the final message in plain mode
    assert "final_message" not in record and "handoff" not in record


def test_a_restart_neither_loses_nor_repeats_an_event(make_runner, model, tmp_path: Path):
    model.script = [
        Reply([function_call("exec_command", {"cmd": "echo before", "tty": False})]),
        Reply([function_call("exec_command", {"cmd": "sleep 6.5; echo after", "tty": False,
                                              "yield_time_ms": 600000}, call_id="call-3")]),
        Reply([message(FINAL)]),
    ]
    runner = codex_runner(make_runner, model, tmp_path)
    runner.submit(task_id="rs", **in_project(tmp_path))
    wait_for(lambda: runner.get("rs").get("commands"), timeout=120)  # the first command is on the record
    wait_for(lambda: sleepers("6.5"), timeout=60)
    again = runner.restart()  # the codex process keeps running; the new runner adopts it
    assert again.get("rs")["status"] == "running"
    record = again.wait_status("rs", timeout=120)
    assert record["status"] == "success", record
    assert [command["exit_code"] for command in record["commands"]] == [0, 0]
    assert record["final_message"] == FINAL and record["handoff"]["summary"] == FINAL
    raw = Path(record["logs"]["stdout"]).read_text()
    assert record["events"] == len(raw.splitlines())
    assert record["stdout"].count("echo before") == 1 and record["stdout"].count(FINAL) == 1
