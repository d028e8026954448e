"""Agent-protocol tasks hand the orchestrator what the agent answered: ``handoff`` on the terminal record and
callback (its newest non-empty result, the summary cut to 4 KiB), null when it answered nothing."""

from __future__ import annotations

import sys
from typing import Any

from support.paths import FAKE_BIN
from support.receivers import CallbackReceiver
from support.runner import Runner, callbacks_settled
from support.waiting import wait_for

AGENT_CMD = (sys.executable, str(FAKE_BIN / "fake-agent-runner"))


def agent_runner(make_runner: Any) -> Runner:
    return make_runner(executor="agent", agent_cmd=AGENT_CMD, agent_idle_seconds=600, agent_close_grace_seconds=10)


def test_the_last_answer_is_the_handoff_in_record_and_callback(make_runner, receiver: CallbackReceiver):
    runner = agent_runner(make_runner)
    runner.submit(task_id="h", prompt="frames:2", group="g", status_callback_url=receiver.url)
    record = runner.wait_status("h", timeout=30)
    assert record["status"] == "success"
    assert record["handoff"] == {"summary": "frame 2", "details": None}
    settled = wait_for(lambda: callbacks_settled(runner, "h", 4), timeout=30)  # running, 2 outputs, success
    assert settled is not None
    bodies = [received.body for received in receiver.received]
    assert [body["status"] for body in bodies] == ["running", "output", "output", "success"]
    assert all("handoff" not in body for body in bodies[:-1])
    assert bodies[-1]["handoff"] == {"summary": "frame 2", "details": None}


def test_an_agent_that_answered_nothing_hands_off_null_and_says_why_it_failed(make_runner):
    runner = agent_runner(make_runner)
    runner.submit(task_id="e", prompt="error:boom", group="g")
    record = runner.wait_status("e", timeout=30)
    assert record["status"] == "failed" and record["message"] == "boom"
    assert record["failure_reason"] == "agent_error"
    assert record["handoff"] is None
