"""Every failed run says why (``failure_reason``) and every canceled one who canceled it (``cancel_reason``),
decided where the status is: real processes, one reason each."""

from __future__ import annotations

from collections.abc import Callable

from support.runner import Runner, shell_runner
from support.waiting import wait_for

SCRIPT = ('case "$HOST_RUNNER_PROMPT" in '
          "exit) exit 3;; "
          "killed) kill -9 $$;; "
          "flood) head -c 2000000 /dev/zero; exec sleep 60;; "
          "long) exec sleep 60;; "
          "*) echo ok;; esac")


def test_each_end_has_its_reason(make_runner: Callable[..., Runner]):
    runner = shell_runner(make_runner, SCRIPT, max_output_bytes=100_000, max_concurrency=4)
    for task_id, prompt, extra in (("ok", "ok", {}), ("exit", "exit", {}), ("killed", "killed", {}),
                                   ("flood", "flood", {}), ("slow", "long", {"timeout_seconds": 1}),
                                   ("cancel", "long", {})):
        assert runner.submit(task_id=task_id, prompt=prompt, **extra).status_code == 202
    runner.wait_status("cancel", "running")
    assert runner.cancel("cancel").status_code == 200
    expected = {"ok": ("success", None), "exit": ("failed", "exit_code"), "killed": ("failed", "exit_code"),
                "flood": ("failed", "output_limit"), "slow": ("failed", "timeout"), "cancel": ("canceled", "api")}
    for task_id, (status, reason) in expected.items():
        record = runner.wait_status(task_id, timeout=30)
        assert record["status"] == status, record
        if status == "failed":
            assert record["failure_reason"] == reason and "cancel_reason" not in record, record
        elif status == "canceled":
            assert record["cancel_reason"] == reason and "failure_reason" not in record, record
        else:
            assert "failure_reason" not in record and "cancel_reason" not in record


def test_a_command_that_cannot_start_is_a_setup_failure(make_runner: Callable[..., Runner]):
    runner = make_runner(executor="shell", cmd_template=("/nonexistent/agent", "{prompt}"))
    runner.submit(task_id="nf")
    record = runner.wait_status("nf", timeout=30)
    assert record["status"] == "failed" and record["failure_reason"] == "setup", record


def test_a_queued_task_canceled_by_api_and_running_ones_canceled_by_shutdown(make_runner: Callable[..., Runner]):
    runner = shell_runner(make_runner, SCRIPT, max_concurrency=1, shutdown="cancel")
    runner.submit(task_id="first", prompt="long")
    runner.submit(task_id="second", prompt="long")
    runner.wait_status("first", "running")
    assert runner.cancel("second").json["cancel_reason"] == "api"
    third = runner.submit(task_id="third", prompt="long")
    assert third.status_code == 202
    again = runner.restart(shutdown="leave")  # the stop cancels every active task, running or queued
    for task_id in ("first", "third"):
        record = wait_for(lambda task_id=task_id: again.get(task_id)["status"] == "canceled" and again.get(task_id))
        assert record["cancel_reason"] == "shutdown", record
    assert again.get("second")["cancel_reason"] == "api"

