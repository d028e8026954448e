"""HOST_RUNNER_LOG_FORMAT=json: one JSON object per line, task_id/run_id on task lines, no secrets or prompts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import requests

from host_runner.ops.runner_log import JsonFormatter, TextFormatter, bind_log_context, log_context
from support.receivers import CallbackReceiver
from support.service import start_service, stop_service
from support.waiting import wait_for

SECRETS = ("api-secret-123", "cb-secret-789", "prompt-secret-456")


def test_json_logs_of_the_real_service_carry_task_ids_and_no_secrets(tmp_path: Path):
    receiver = CallbackReceiver()
    receiver.responses = [500]  # one failed attempt: the CallbackActor logs a retry line about the task
    # The command leaves a background child behind, so the launcher (domain code, not an actor) logs about it.
    process, base = start_service(
        tmp_path, HOST_RUNNER_LOG_FORMAT="json", HOST_RUNNER_API_TOKEN="api-secret-123",
        HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_KILL_GRACE_SECONDS="1",
        HOST_RUNNER_CMD_TEMPLATE="sh -c 'sleep 30 & echo started'", HOST_RUNNER_ACCESS_LOG="-",
        HOST_RUNNER_CALLBACK_BACKOFF_SECONDS="0.05",
    )
    headers = {"Authorization": "Bearer api-secret-123"}
    try:
        body = {"task_id": "j1", "run_id": "r1", "prompt": "prompt-secret-456",
                "status_callback_url": receiver.url, "status_callback_token": "cb-secret-789"}
        assert requests.post(f"{base}/tasks", json=body, headers=headers, timeout=10).status_code == 202
        wait_for(lambda: requests.get(f"{base}/tasks/j1", headers=headers, timeout=5).json()["status"] == "success",
                 timeout=20)
        wait_for(lambda: len(receiver.for_task("j1")) == 3, what="running (failed once, then sent) and success")
    finally:
        assert stop_service(process) == 0
        receiver.close()
    text = (tmp_path / "gunicorn.log").read_text()
    entries = [json.loads(line) for line in text.splitlines()]  # every line parses, gunicorn's own included
    assert {entry["logger"] for entry in entries} >= {"gunicorn.error", "gunicorn.access", "actors.supervisor",
                                                      "actors.task", "host_runner.run.launchers", "actors.system"}
    task_lines = [entry for entry in entries if "j1" in entry["message"]]
    assert len(task_lines) >= 3
    for entry in task_lines:
        if entry["logger"] != "gunicorn.access":  # request lines name the path, not a task
            assert (entry.get("task_id"), entry.get("run_id")) == ("j1", "r1"), entry
    assert any(entry["logger"] == "actors.callback_sender" for entry in task_lines)
    launcher = [entry for entry in entries if entry["logger"] == "host_runner.run.launchers"]
    assert launcher and all(entry["task_id"] == "j1" for entry in launcher)
    assert all({"time", "level", "logger", "thread", "message"} <= set(entry) for entry in entries)
    for secret in SECRETS:
        assert secret not in text


def test_prompts_are_logged_only_when_asked_for(make_runner, caplog, tmp_path: Path):
    caplog.set_level(logging.INFO)
    quiet = make_runner(mock_seconds=0)
    quiet.submit(task_id="p1", prompt="keep-this-private")
    quiet.wait_status("p1", "success")
    assert "keep-this-private" not in caplog.text
    submitted = [record for record in caplog.records if "submitted" in record.getMessage()]
    assert [(record.task_id, record.run_id) for record in submitted] == [("p1", "run-1")]

    loud = make_runner(mock_seconds=0, log_prompts=True, data_dir=tmp_path / "loud")
    loud.submit(task_id="p2", prompt="show-this-one")
    loud.wait_status("p2", "success")
    assert "show-this-one" in caplog.text


def test_formatters():
    record = logging.LogRecord("actors.task", logging.ERROR, __file__, 1, "task %s broke", ("t1",), None)
    record.task_id, record.run_id = "t1", "r1"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "task t1 broke" and entry["level"] == "ERROR"
    assert (entry["task_id"], entry["run_id"]) == ("t1", "r1")
    assert "ValueError: boom" in entry["exception"]
    assert "[t1/r1]" in TextFormatter().format(record)


def test_bound_context_stays_in_its_context():
    import contextvars

    def inside() -> dict:
        bind_log_context(task_id="t9", run_id="r9")
        return dict(log_context())

    assert contextvars.copy_context().run(inside) == {"task_id": "t9", "run_id": "r9"}
    assert "task_id" not in log_context()
