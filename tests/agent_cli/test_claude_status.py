"""The claude executor's status comes from the ``result`` event, not only from the exit code: a run Claude Code
reports as failed (``is_error``) fails even when the process exits 0. The CLI here is a script that prints a
recorded Claude Code 2.1.92 event stream (samples/) and exits 0, so the test runs without the CLI installed;
the real CLI's runs are in test_claude_cli.py."""

from __future__ import annotations

from pathlib import Path

from support.runner import Runner

SAMPLES = Path(__file__).parent / "samples"


def printing_claude(make_runner, tmp_path: Path, sample: str) -> Runner:
    script = tmp_path / "claude"
    script.write_text(f"#!/bin/sh\ncat '{SAMPLES / sample}'\nexit 0\n")
    script.chmod(0o755)
    return make_runner(executor="claude", claude_bin=str(script))


def test_is_error_fails_a_run_that_exited_0(make_runner, tmp_path: Path):
    runner = printing_claude(make_runner, tmp_path, "claude-2.1.92-server-error-500.jsonl")
    runner.submit(task_id="e0")
    record = runner.wait_status("e0", timeout=30)
    assert record["status"] == "failed" and record["exit_code"] == 0
    assert record["failure_reason"] == "agent_error" and record["message"].startswith("API Error: 500")
    assert record["handoff"] is None


def test_a_success_result_that_exited_0_succeeds(make_runner, tmp_path: Path):
    runner = printing_claude(make_runner, tmp_path, "claude-2.1.92-success.jsonl")
    runner.submit(task_id="s0", session_id="earlier-session")
    record = runner.wait_status("s0", timeout=30)
    assert record["status"] == "success" and "failure_reason" not in record
    assert record["cost_usd"] > 0 and record["final_message"].startswith("All done")
    assert record["resumed_session_id"] == "earlier-session"
    assert record["session_id"] == "e453f7c4-0582-4861-8d91-c2a021bf8ef1"
