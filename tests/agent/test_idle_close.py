"""An agent that answered and waits is closed for being idle, not killed for a timeout: its hard timeout is never
shorter than the idle close plus the close grace, and being stopped after answering ends ``success``.

The shipped defaults scaled down 500 times: timeout 600 s -> 1.2 s, idle close 1800 s -> 3.6 s, close grace
60 s -> 0.12 s. With the old rule the timeout (1.2 s after the answer) came long before the idle close.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

from support.paths import FAKE_BIN
from support.runner import Runner
from support.waiting import wait_for

AGENT_CMD = (sys.executable, str(FAKE_BIN / "fake-agent-runner"))
SCALED_DEFAULTS = {"default_timeout_seconds": 1.2, "agent_idle_seconds": 3.6, "agent_close_grace_seconds": 0.12}


def scaled_runner(make_runner: Any) -> Runner:
    return make_runner(executor="agent", agent_cmd=AGENT_CMD, kill_grace_seconds=0.5, **SCALED_DEFAULTS)


def test_the_hard_timeout_of_an_agent_is_at_least_idle_close_plus_grace(make_runner):
    runner = scaled_runner(make_runner)
    record = runner.submit(task_id="t", prompt="frames:1 loop", group="g").json
    assert record["timeout_seconds"] == 3.72 and record["requested_timeout_seconds"] == 1.2
    longer = runner.submit(task_id="long", prompt="frames:1", group="g2", timeout_seconds=30).json
    assert longer["timeout_seconds"] == 30 and "requested_timeout_seconds" not in longer
    runner.wait_status("long", "success")


def test_an_answered_agent_left_alone_is_closed_and_ends_success(make_runner):
    runner = scaled_runner(make_runner)
    runner.submit(task_id="polite", prompt="frames:1 loop", group="g")
    record = runner.wait_status("polite", "success", timeout=30)
    # it was not killed: it read _close and exited by itself
    assert record["exit_code"] == 0 and "received _close" in record["stderr"]
    assert record["closing"] is True


def test_an_answered_agent_that_ignores_close_is_stopped_and_still_ends_success(make_runner):
    runner = scaled_runner(make_runner)
    runner.submit(task_id="deaf", prompt="frames:1 loop ignore-close", group="g")
    record = runner.wait_status("deaf", "success", timeout=30)
    assert re.fullmatch(r"closed after being idle for \d+ s since its last answer "
                        r"\(it did not exit within 0.12 s of _close and was stopped\)", record["message"]), record
    assert record["exit_code"] == 143  # SIGTERM


def test_an_agent_that_never_answered_still_fails_at_its_timeout(make_runner):
    runner = scaled_runner(make_runner)
    runner.submit(task_id="mute", prompt="sleep:60", group="g")
    record = runner.wait_status("mute", "failed", timeout=30)
    assert record["message"] == "timed out: no output for 3.72 s"


def test_an_agent_busy_with_a_message_it_never_answers_fails_at_its_timeout(make_runner):
    runner = scaled_runner(make_runner)
    runner.submit(task_id="stuck", prompt="frames:1 loop", group="g")
    wait_for(lambda: runner.get("stuck").get("frames", 0) >= 2, what="the first answer")
    # The agent is asked something (its answer would come in 50 ms); it is stopped first by a SIGSTOP, so the
    # message stays unanswered: once asked, it is not idle, and the timeout is a failure again.
    os.killpg(runner.get("stuck")["pid"], signal.SIGSTOP)  # SIGKILL still ends it at the timeout
    sent = runner.client.simulate_post("/tasks/stuck/messages", json={"text": "more"}, headers=runner.headers())
    assert sent.status_code == 202, sent.text
    record = runner.wait_status("stuck", "failed", timeout=30)
    assert record["message"] == "timed out: no output for 3.72 s"
