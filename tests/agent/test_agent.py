"""The agent executor, end to end with a real agent-runner process (tests/bin/fake-agent-runner, which speaks the
protocol: stdin JSON, framed results, IPC input directory, _close): frames, follow-up messages, idle timeout and
_close, the hard timeout reset by frames, the per-group queue, the per-run log, restarts."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from host_runner.domain.submission import EXECUTORS
from host_runner.ops.config import ConfigError, load_config
from support.paths import FAKE_BIN
from support.processes import pids_in_group
from support.receivers import CallbackReceiver
from support.runner import Runner
from support.waiting import wait_for

AGENT_CMD = (sys.executable, str(FAKE_BIN / "fake-agent-runner"))


def agent_runner(make_runner, **settings: Any) -> Runner:
    settings.setdefault("executor", "agent")
    settings.setdefault("agent_cmd", AGENT_CMD)
    settings.setdefault("agent_idle_seconds", 600)
    settings.setdefault("agent_close_grace_seconds", 10)
    return make_runner(**settings)


def send(runner: Runner, task_id: str, text: Any) -> Any:
    return runner.client.simulate_post(f"/tasks/{task_id}/messages", json={"text": text}, headers=runner.headers())


def close(runner: Runner, task_id: str) -> Any:
    return runner.client.simulate_post(f"/tasks/{task_id}/close", headers=runner.headers())


def results(record: dict[str, Any]) -> list[Any]:
    return [output["result"] for output in record["outputs"]]


def wait_frames(runner: Runner, task_id: str, count: int) -> dict[str, Any]:
    return wait_for(lambda: (r := runner.get(task_id)).get("frames", 0) >= count and r,
                    what=f"{count} frames from {task_id}")


# --- frames ---------------------------------------------------------------------------------------------------
def test_multi_frame_run_keeps_outputs_and_session_and_reports_them_in_order(make_runner, receiver: CallbackReceiver):
    runner = agent_runner(make_runner)
    submitted = runner.submit(task_id="multi", prompt="frames:3", group="team-a", session_id="old-session",
                              status_callback_url=receiver.url)
    assert submitted.status_code == 202, submitted.text
    record = runner.wait_status("multi", "success")
    assert results(record) == ["frame 1", "frame 2", "frame 3"]
    assert record["frames"] == 3 and record["invalid_frames"] == 0 and record["outputs_dropped"] == 0
    assert record["new_session_id"] == "session-3"
    assert record["session_id"] == "old-session"
    assert record["group"] == "team-a" and record["executor"] == "agent"
    assert record["exit_code"] == 0 and record["message"] == "completed"
    assert record["last_output_at"]
    assert not any(key.startswith("_") for key in record)  # the runner's bookkeeping stays private
    events = wait_for(lambda: len(receiver.for_task("multi")) == 5 and receiver.for_task("multi"),
                      what="5 callbacks")
    bodies = [event.body for event in events]
    assert [body["status"] for body in bodies] == ["running", "output", "output", "output", "success"]
    assert [body["sequence"] for body in bodies] == [1, 2, 3, 4, 5]
    assert [body["output_index"] for body in bodies[1:4]] == [1, 2, 3]
    assert [body["output"]["result"] for body in bodies[1:4]] == ["frame 1", "frame 2", "frame 3"]
    assert bodies[1]["output"]["newSessionId"] == "session-1"
    def all_delivered() -> dict[str, Any] | None:
        record = runner.get("multi")
        return record if all(event["state"] == "delivered" for event in record["callbacks"]) else None

    shown = wait_for(all_delivered, what="every event delivered")
    assert [event["status"] for event in shown["callbacks"]] == ["running", "output", "output", "output", "success"]


def test_the_agent_gets_the_protocol_input_environment_and_working_directory(make_runner, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    env = dict(os.environ, HOME=str(tmp_path / "home"), HOST_RUNNER_API_TOKEN="not-for-agents")
    runner = agent_runner(make_runner, env=env)
    runner.submit(task_id="input", run_id="r-2", prompt="echo-input", session_id="s-9",
                  execution_mode="shared-workspace",
                  workspace={"project_id": 42, "project_root": str(project), "lock_paths": [str(project)]},
                  agent_input={"chatJid": "123@g.us", "isMain": True, "assistantName": "Andy", "extra": [1]})
    record = runner.wait_status("input", "success")
    seen = json.loads(record["outputs"][0]["result"])
    assert seen["input"] == {
        "prompt": "echo-input", "sessionId": "s-9", "groupFolder": "42", "chatJid": "123@g.us", "isMain": True,
        "isScheduledTask": False, "assistantName": "Andy", "extra": [1],
    }
    run_dir = Path(record["logs"]["dir"])
    assert seen["env"]["HOST_RUNNER_GROUP"] == "42"
    assert seen["env"]["HOST_RUNNER_IPC_DIR"] == str(run_dir / "ipc")
    assert seen["env"]["HOST_RUNNER_TASK_ID"] == "input" and seen["env"]["HOST_RUNNER_RUN_ID"] == "r-2"
    assert seen["env"]["HOME"] == str(tmp_path / "home")  # the user's home, so the real ~/.claude
    assert "HOST_RUNNER_API_TOKEN" not in seen["env"]
    assert seen["cwd"] == str(project)
    assert record["group"] == "42"
    assert not (run_dir / "agent-input.json").exists()  # it held the prompt; gone with the run


def test_a_task_can_choose_the_agent_executor_on_a_runner_whose_default_is_mock(make_runner):
    runner = make_runner(agent_cmd=AGENT_CMD, allowed_executors=("mock", "agent"))
    runner.submit(task_id="chosen", prompt="frames:1", executor="agent", group="g")
    runner.submit(task_id="default", prompt="frames:1")
    assert results(runner.wait_status("chosen", "success")) == ["frame 1"]
    default = runner.wait_status("default", "success")
    assert default["executor"] == "mock" and default["stdout"] == "frames:1" and "outputs" not in default


def test_frames_written_one_byte_at_a_time_are_parsed(make_runner):
    runner = agent_runner(make_runner)
    runner.submit(task_id="split", prompt="split frames:3 garbage", group="g")
    record = runner.wait_status("split", "success")
    assert results(record) == ["frame 1", "frame 2", "frame 3", "after garbage"]
    assert record["invalid_frames"] == 1


def test_invalid_frames_are_logged_and_skipped(make_runner, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING)
    runner = agent_runner(make_runner)
    runner.submit(task_id="garbage", prompt="garbage frames:1", group="g")
    record = runner.wait_status("garbage", "success")
    assert results(record) == ["after garbage", "frame 1"]
    assert record["invalid_frames"] == 1
    assert "plain log line before" in Path(record["logs"]["stdout"]).read_text()  # all output stays on disk
    warnings = [r.getMessage() for r in caplog.records if "skipped an agent frame" in r.getMessage()]
    assert len(warnings) == 1 and "invalid JSON" in warnings[0] and "task garbage" in warnings[0]


def test_the_record_keeps_only_the_newest_outputs_within_its_budget(make_runner):
    runner = agent_runner(make_runner)
    runner.submit(task_id="big", prompt="big:25", group="g")
    record = runner.wait_status("big", "success")
    assert record["frames"] == 25
    assert 0 < len(record["outputs"]) < 25
    assert record["outputs_dropped"] == 25 - len(record["outputs"])
    assert record["outputs"][-1]["result"] == "5" * 100_000  # the newest is kept


def test_last_frame_with_status_error_fails_the_task_with_its_message(make_runner):
    runner = agent_runner(make_runner)
    runner.submit(task_id="err", prompt="frames:1 error:model-overloaded", group="g")
    record = runner.wait_status("err", "failed")
    assert record["message"] == "model-overloaded" and record["exit_code"] == 0
    runner.submit(task_id="exit3", prompt="frames:1 exit:3", group="g")
    record = runner.wait_status("exit3", "failed")
    assert record["message"] == "exited with code 3" and results(record) == ["frame 1"]


# --- follow-up messages, _close, idle timeout ------------------------------------------------------------------
def test_follow_up_messages_reach_the_agent_in_order_and_close_ends_it(make_runner):
    runner = agent_runner(make_runner)
    runner.submit(task_id="chat", prompt="loop", group="g")
    wait_frames(runner, "chat", 1)  # the first query ended (a null-result frame)
    texts = [f"message {index} {'x' * index}" for index in range(8)] + ['quotes " and \\ and\nnewlines']
    names = []
    for text in texts:
        answer = send(runner, "chat", text)
        assert answer.status_code == 202, answer.text
        assert answer.json["task_id"] == "chat" and answer.json["run_id"] == "run-1"
        names.append(answer.json["message_id"])
    assert names == sorted(names) and len(set(names)) == len(names)
    record = wait_frames(runner, "chat", 1 + 2 * len(texts))
    assert [result for result in results(record) if result] == [f"echo: {text}" for text in texts]
    answer = close(runner, "chat")
    assert answer.status_code == 202 and answer.json["closing"] is True
    assert close(runner, "chat").status_code in (202, 409)  # a second close is harmless
    record = runner.wait_status("chat", "success")
    assert record["message"] == "completed" and record["closing"] is True
    assert "received _close" in record["stderr"]
    assert send(runner, "chat", "too late").status_code == 409
    assert close(runner, "chat").status_code == 409


def test_message_endpoint_errors(make_runner):
    runner = agent_runner(make_runner, max_concurrency=2, cmd_template=("sleep", "1000"),
                          allowed_executors=("agent", "shell"))
    runner.submit(task_id="agent", prompt="loop", group="g")
    runner.submit(task_id="queued", prompt="loop", group="g")  # same group: waits
    runner.submit(task_id="shelltask", executor="shell")
    wait_frames(runner, "agent", 1)
    runner.wait_status("shelltask", "running")
    assert send(runner, "nobody", "hi").status_code == 404
    assert close(runner, "nobody").status_code == 404
    queued = send(runner, "queued", "hi")
    assert queued.status_code == 409 and "queued" in queued.json["detail"]
    shell = send(runner, "shelltask", "hi")
    assert shell.status_code == 409 and "shell" in shell.json["detail"]
    for body in ({}, {"text": ""}, {"text": 5}, {"text": "a\x00b"}):
        answer = runner.client.simulate_post("/tasks/agent/messages", json=body)
        assert answer.status_code == 422 and answer.json["field"] == "text", body
    assert runner.client.simulate_post("/tasks/agent/messages", json=["x"]).status_code == 422
    assert runner.client.simulate_post("/tasks/agent/messages", body="{", headers={
        "Content-Type": "application/json"}).status_code == 400
    for task_id in ("queued", "agent", "shelltask"):
        runner.cancel(task_id)


def test_idle_timeout_writes_close_after_the_last_answer_only(make_runner):
    runner = agent_runner(make_runner, agent_idle_seconds=0.3)
    runner.submit(task_id="idle", prompt="loop", group="g")
    wait_frames(runner, "idle", 1)
    # Only a null result so far (a session signal, not an answer): the idle clock has not started.
    time.sleep(1.0)
    record = runner.get("idle")
    assert record["status"] == "running" and record["closing"] is False
    assert send(runner, "idle", "hello").status_code == 202
    record = runner.wait_status("idle", "success")
    assert "echo: hello" in results(record)
    assert record["closing"] is True and record["message"] == "completed"
    assert "received _close" in record["stderr"]


def test_an_agent_ignoring_close_is_stopped_after_the_grace(make_runner):
    runner = agent_runner(make_runner, agent_idle_seconds=0.2, agent_close_grace_seconds=0.5,
                          kill_grace_seconds=0.5)
    runner.submit(task_id="stubborn", prompt="frames:1 loop ignore-close ignore-term", group="g")
    pgid = runner.wait_status("stubborn", "running")["pid"]
    # It answered ("frame 1") and waited: closing it is the end of its session, not a failure.
    record = runner.wait_status("stubborn", "success")
    assert re.fullmatch(r"closed after being idle for \d+ s since its last answer "
                        r"\(it did not exit within 0.5 s of _close and was stopped\)", record["message"]), record
    assert "received _close" in record["stderr"]
    assert record["exit_code"] == 137  # SIGTERM was ignored: killed
    wait_for(lambda: not pids_in_group(pgid), timeout=5, what="the agent's group to be gone")


def test_close_asked_through_the_api_is_enforced_once_the_agent_has_answered(make_runner):
    runner = agent_runner(make_runner, agent_close_grace_seconds=0.5)
    runner.submit(task_id="asked", prompt="loop ignore-close", group="g")
    wait_frames(runner, "asked", 1)
    assert close(runner, "asked").status_code == 202
    # Not answered yet (only a null result): no grace clock, it may still be finishing a query.
    time.sleep(1.0)
    assert runner.get("asked")["status"] == "running"
    assert send(runner, "asked", "more").status_code == 409  # closing: no more messages
    runner.cancel("asked")
    record = runner.wait_status("asked", "canceled")
    assert "received _close" in record["stderr"]

    runner.submit(task_id="answered", prompt="frames:1 loop ignore-close", group="g")
    wait_frames(runner, "answered", 2)
    assert close(runner, "answered").status_code == 202
    record = runner.wait_status("answered", "success")
    assert record["message"].endswith("(it did not exit within 0.5 s of _close and was stopped)"), record


def test_a_frame_resets_the_hard_timeout(make_runner):
    # The timeout cannot be shorter than idle close + close grace (1 s here): these are above it.
    runner = agent_runner(make_runner, agent_idle_seconds=0.5, agent_close_grace_seconds=0.5)
    # 16 frames 0.25 s apart: 4 s in all, longer than the 3 s timeout, but never 3 s without output.
    runner.submit(task_id="ticking", prompt="tick:16:0.25", group="g", timeout_seconds=3)
    record = runner.wait_status("ticking", "success")
    assert record["frames"] == 16
    # A session signal (a null result) is output, but no answer: silent after it, the agent failed.
    runner.submit(task_id="silent", prompt="loop ignore-term", group="g2", timeout_seconds=1.5)
    wait_frames(runner, "silent", 1)
    record = runner.wait_status("silent", "failed")
    assert record["message"] == "timed out: no output for 1.5 s"
    assert results(record) == [None]


# --- the group queue --------------------------------------------------------------------------------------------
def test_one_task_per_group_while_two_groups_run_in_parallel(make_runner):
    runner = agent_runner(make_runner, max_concurrency=4)
    for task_id, group in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        runner.submit(task_id=task_id, prompt="loop", group=group)
    wait_frames(runner, "a1", 1)
    wait_frames(runner, "b1", 1)  # b runs beside a
    waiting = runner.get("a2")
    assert waiting["status"] == "queued"
    assert waiting["queue_position"] == 1 and waiting["group_queue_position"] == 1
    report = runner.client.simulate_get("/debug/actors").json
    assert report["supervisor"]["queue"] == [{"task_id": "a2", "run_id": "run-1", "group": "a"}]
    assert {task["group"] for task in report["supervisor"]["running_tasks"]} == {"a", "b"}
    agents = [actor["state"] for actor in report["actors"] if actor["class"] == "AgentTaskActor"]
    assert sorted(state["group"] for state in agents) == ["a", "b"] and all(state["frames"] >= 1 for state in agents)
    assert close(runner, "a1").status_code == 202
    first = runner.wait_status("a1", "success")
    wait_frames(runner, "a2", 1)
    second = runner.get("a2")
    assert "queue_position" not in second
    assert second["started_at"] >= first["finished_at"]  # never two of group a at once
    for task_id in ("a2", "b1"):
        close(runner, task_id)
        runner.wait_status(task_id, "success")


def test_a_busy_group_does_not_block_other_groups_and_the_cap_still_holds(make_runner):
    runner = agent_runner(make_runner, max_concurrency=2)
    for task_id, group in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")):
        runner.submit(task_id=task_id, prompt="loop", group=group)
    wait_frames(runner, "a1", 1)
    wait_frames(runner, "b1", 1)  # went ahead of a2, whose group is busy
    assert runner.get("a2")["queue_position"] == 1
    assert runner.get("c1")["queue_position"] == 2 and runner.get("c1")["status"] == "queued"  # the cap
    listed = {task["task_id"]: task for task in runner.client.simulate_get("/tasks?status=queued").json["tasks"]}
    assert listed["c1"]["queue_position"] == 2 and listed["a2"]["group_queue_position"] == 1
    close(runner, "b1")
    wait_frames(runner, "c1", 1)  # the free slot goes to c1: a2 still waits for a1
    assert runner.get("a2")["status"] == "queued"
    close(runner, "a1")
    wait_frames(runner, "a2", 1)
    for task_id in ("a2", "c1"):
        close(runner, task_id)
        runner.wait_status(task_id, "success")


def test_queue_order_after_cancels_of_queued_tasks(make_runner):
    runner = agent_runner(make_runner, max_concurrency=4)
    names = ["g1", "g2", "g3", "g4", "g5"]
    for name in names:
        runner.submit(task_id=name, prompt="loop", group="g")
    wait_frames(runner, "g1", 1)
    assert runner.cancel("g3").json["status"] == "canceled"
    assert [runner.get(name)["group_queue_position"] for name in ("g2", "g4", "g5")] == [1, 2, 3]
    close(runner, "g1")
    wait_frames(runner, "g2", 1)
    assert runner.cancel("g4").json["status"] == "canceled"
    assert runner.get("g5")["group_queue_position"] == 1
    close(runner, "g2")
    wait_frames(runner, "g5", 1)
    close(runner, "g5")
    runner.wait_status("g5", "success")
    records = {name: runner.get(name) for name in names}
    assert records["g3"]["started_at"] is None and records["g4"]["started_at"] is None
    ran = sorted(("g1", "g2", "g5"), key=lambda name: records[name]["started_at"])
    assert ran == ["g1", "g2", "g5"]
    assert records["g1"]["finished_at"] <= records["g2"]["started_at"]
    assert records["g2"]["finished_at"] <= records["g5"]["started_at"]


# --- per-run log, restarts, settings ----------------------------------------------------------------------------
def test_run_log_has_header_input_summary_and_stderr_but_not_the_prompt(make_runner, caplog):
    caplog.set_level(logging.DEBUG)
    runner = agent_runner(make_runner)
    prompt = "frames:2 stderr:diagnostic-line confidential-words-here"
    runner.submit(task_id="logged", prompt=prompt, group="team", session_id="sess-1")
    record = runner.wait_status("logged", "success")
    log = Path(record["run_log"]).read_text()
    for line in ("task: logged", "run: run-1", "group: team", "exit code: 0", "timed out: no",
                 "frames: 2 (0 invalid, skipped)", f"prompt length: {len(prompt)} characters",
                 "session id: sess-1", "new session id: session-2", "status: success (completed)"):
        assert line in log, line
    assert "started: " in log and "duration: " in log
    assert log.index("=== stderr ===") < log.index("diagnostic-line")
    assert "confidential-words-here" not in log
    assert not any("confidential-words-here" in r.getMessage() for r in caplog.records)

    runner = runner.restart(log_prompts=True)
    runner.submit(task_id="logged-2", prompt=prompt, group="team")
    record = runner.wait_status("logged-2", "success")
    assert "confidential-words-here" in Path(record["run_log"]).read_text()


def test_a_restarted_runner_resumes_reading_without_losing_or_repeating_frames(make_runner,
                                                                               receiver: CallbackReceiver):
    runner = agent_runner(make_runner)
    runner.submit(task_id="survivor", prompt="frames:2 loop", group="g", status_callback_url=receiver.url)
    wait_frames(runner, "survivor", 3)
    wait_for(lambda: len(receiver.for_task("survivor")) == 4, what="running + 3 outputs delivered")
    runner = runner.restart()
    assert send(runner, "survivor", "after restart").status_code == 202
    wait_frames(runner, "survivor", 5)
    assert close(runner, "survivor").status_code == 202
    record = runner.wait_status("survivor", "success")
    assert results(record) == ["frame 1", "frame 2", None, "echo: after restart", None]
    events = wait_for(lambda: len(receiver.for_task("survivor")) == 7 and receiver.for_task("survivor"))
    outputs = [event.body for event in events if event.body["status"] == "output"]
    assert [body["output_index"] for body in outputs] == [1, 2, 3, 4, 5]
    assert events[-1].body["status"] == "success"


def test_an_idle_agent_is_still_closed_after_a_restart(make_runner):
    runner = agent_runner(make_runner, agent_idle_seconds=1)
    runner.submit(task_id="idle-restart", prompt="frames:1 loop", group="g")
    wait_frames(runner, "idle-restart", 2)  # answered, then idle
    runner = runner.restart()
    record = runner.wait_status("idle-restart", "success")
    assert record["closing"] is True and "received _close" in record["stderr"]
    assert results(record) == ["frame 1", None]


@pytest.mark.parametrize("changes, field", [
    ({"executor": "bogus"}, "executor"),
    ({"executor": "agent"}, "group"),
    ({"executor": "agent", "group": "../up"}, "group"),
    ({"executor": "agent", "group": "g", "session_id": 5}, "session_id"),
    ({"executor": "agent", "group": "g", "agent_input": []}, "agent_input"),
    ({"executor": "agent", "group": "g", "agent_input": {"isMain": "yes"}}, "agent_input.isMain"),
    ({"executor": "agent", "group": "g", "agent_input": {"chatJid": 7}}, "agent_input.chatJid"),
    ({"executor": "agent", "group": "g", "agent_input": {"prompt": "other"}}, "agent_input.prompt"),
    ({"executor": "agent", "group": "g", "execution_mode": "docker-sandbox",
      "sandbox": {"image": "busybox", "command": ["true"]}}, "executor"),
])
def test_invalid_agent_submissions_are_422(make_runner, changes: dict[str, Any], field: str):
    runner = make_runner(allowed_executors=EXECUTORS)
    answer = runner.submit(task_id="bad", **changes)
    assert answer.status_code == 422, answer.text
    assert answer.json["field"] == field


def test_agent_runner_requires_a_group_and_the_command_setting(make_runner):
    runner = agent_runner(make_runner)
    assert runner.submit(task_id="nogroup").json["field"] == "group"
    assert runner.submit(task_id="byproject", prompt="frames:1", workspace={"project_id": 9}).status_code == 202
    assert runner.wait_status("byproject", "success")["group"] == "9"
    with pytest.raises(ConfigError, match="HOST_RUNNER_AGENT_CMD"):
        load_config({"HOST_RUNNER_EXECUTOR": "agent"})
    config = load_config({"HOST_RUNNER_EXECUTOR": "agent", "HOST_RUNNER_AGENT_CMD": "node 'my dir/index.js'",
                          "HOST_RUNNER_AGENT_IDLE_SECONDS": "5", "HOST_RUNNER_LOG_PROMPTS": "true"})
    assert config.agent_cmd == ("node", "my dir/index.js")
    assert config.agent_idle_seconds == 5 and config.log_prompts is True
    with pytest.raises(ConfigError, match="HOST_RUNNER_AGENT_IDLE_SECONDS"):
        load_config({"HOST_RUNNER_AGENT_IDLE_SECONDS": "0"})


def test_a_missing_agent_command_fails_the_task_clearly(make_runner):
    runner = make_runner(allowed_executors=("mock", "agent"))
    runner.submit(task_id="nocmd", executor="agent", group="g")
    assert runner.wait_status("nocmd", "failed")["message"].startswith("HOST_RUNNER_AGENT_CMD is not set")
    runner = runner.restart(agent_cmd=("no-such-agent-runner-xyz",))
    runner.submit(task_id="noprog", executor="agent", group="g")
    assert runner.wait_status("noprog", "failed")["message"] == "command not found: 'no-such-agent-runner-xyz'"
