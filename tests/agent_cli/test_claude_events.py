"""The Claude Code event parser over events recorded from the real Claude Code 2.1.92 (samples/, recorded against
tests/support/anthropic_server.py in /tmp/project): any chunking gives the same record, failures get their
reason from ``is_error`` (not the subtype), unknown or broken lines are counted and never raise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_runner.agent_cli import ClaudeEvents, JsonLines, Transcript, apply_line
from support.event_feed import assert_any_split_gives_the_same_record, feed

SAMPLES = Path(__file__).parent / "samples"
SUCCESS = SAMPLES / "claude-2.1.92-success.jsonl"
MAX_TURNS = SAMPLES / "claude-2.1.92-max-turns.jsonl"
AUTH = SAMPLES / "claude-2.1.92-auth-401.jsonl"
SERVER_ERROR = SAMPLES / "claude-2.1.92-server-error-500.jsonl"
FINAL = "All done: made.txt and notes.txt.\nSecond line, ünïcode."


def read(chunks: list[bytes], max_line_bytes: int = 1 << 20) -> tuple[Transcript, str, int]:
    """The transcript, readable text and resume offset from feeding ``chunks`` in order to one parser."""
    return feed(ClaudeEvents(), chunks, max_line_bytes)


def test_a_successful_run_gives_the_record_fields():
    transcript, text, offset = read([SUCCESS.read_bytes()])
    fields = transcript.to_fields()
    assert fields["session_id"] == "e453f7c4-0582-4861-8d91-c2a021bf8ef1"
    assert fields["final_message"] == FINAL
    assert fields["usage"] == {"input_tokens": 480, "cached_input_tokens": 80, "output_tokens": 28}
    assert fields["cost_usd"] == pytest.approx(0.001644)
    assert fields["files_changed"] == [{"path": "/tmp/project/notes.txt", "kind": "add"}]
    assert fields["commands"] == [{"command": "echo hi > made.txt && echo ran", "exit_code": 0},
                                  {"command": "ls missing-file", "exit_code": 1}]
    assert fields["events"] == 10 and transcript.unknown_events == 0 and transcript.invalid_events == 0
    assert offset == len(SUCCESS.read_bytes())
    assert transcript.failure_reason is None and transcript.error is None
    assert "$ echo hi > made.txt && echo ran  (exit 0)\n  ran\n" in text
    assert "$ ls missing-file  (exit 1)\n  Exit code 2\n" in text
    assert "Writing the notes.\nadd /tmp/project/notes.txt\n" in text
    assert text.endswith(FINAL + "\n") and '"type"' not in text
    assert transcript.handoff() == {"summary": FINAL, "details": None}


def test_max_turns_is_an_error_with_its_reason():
    transcript, text, _ = read([MAX_TURNS.read_bytes()])
    assert transcript.failure_reason == "max_turns"
    assert transcript.error == "Reached maximum number of turns (1)"
    assert transcript.commands_count == 1 and transcript.final_message is None
    assert "error: Reached maximum number of turns (1)" in text


@pytest.mark.parametrize(("sample", "reason", "start"), [
    (AUTH, "auth_required", "Failed to authenticate. API Error: 401"),
    (SERVER_ERROR, "agent_error", "API Error: 500"),
])
def test_an_api_failure_reported_as_success_with_is_error_fails(sample: Path, reason: str, start: str):
    assert b'"subtype":"success","is_error":true' in sample.read_bytes()
    transcript, text, _ = read([sample.read_bytes()])
    assert transcript.failure_reason == reason
    assert transcript.error is not None and transcript.error.startswith(start)
    assert transcript.final_message is None and transcript.handoff() is None  # the error is no agent message
    assert text.count(start) == 1


def test_not_logged_in_is_an_auth_failure():
    lines = [
        {"type": "assistant", "error": "authentication_failed", "message": {
            "model": "<synthetic>", "content": [{"type": "text", "text": "Not logged in · Please run /login"}]}},
        {"type": "result", "subtype": "success", "is_error": True, "result": "Not logged in · Please run /login"},
    ]
    transcript, _, _ = read([b"".join(json.dumps(line).encode() + b"\n" for line in lines)])
    assert transcript.failure_reason == "auth_required" and transcript.error == "Not logged in · Please run /login"


def test_a_subagents_text_is_not_the_final_message():
    lines = [
        {"type": "assistant", "parent_tool_use_id": None, "message": {"content": [{"type": "text", "text": "main"}]}},
        {"type": "assistant", "parent_tool_use_id": "toolu_task", "message": {"content": [
            {"type": "text", "text": "from the subagent"}]}},
    ]
    transcript, text, _ = read([b"".join(json.dumps(line).encode() + b"\n" for line in lines)])
    assert transcript.final_message == "main" and "from the subagent" in text


def test_an_error_during_execution_is_an_agent_error():
    line = {"type": "result", "subtype": "error_during_execution", "is_error": True, "errors": ["boom"]}
    transcript, _, _ = read([json.dumps(line).encode() + b"\n"])
    assert transcript.failure_reason == "agent_error" and transcript.error == "boom"


@pytest.mark.parametrize("sample", [SUCCESS, MAX_TURNS, AUTH, SERVER_ERROR], ids=lambda p: p.stem)
def test_split_at_every_byte_boundary_gives_the_same_record(sample: Path):
    assert_any_split_gives_the_same_record(sample.read_bytes(), ClaudeEvents)


def test_unknown_and_oddly_shaped_events_are_counted_not_fatal():
    lines = [
        {"type": "system", "subtype": "init", "session_id": "s-1"},
        {"type": "system", "subtype": "compact_boundary"},
        {"type": "stream_event", "event": {"type": "content_block_delta"}},  # --include-partial-messages
        {"type": "assistant", "message": "not an object"},
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": 5, "name": "Bash"}, "x"]}},
        {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "nobody"}]}},
        {"type": "result", "usage": "lots", "total_cost_usd": "free", "is_error": False, "result": "last"},
    ]
    transcript, _, _ = read([b"".join(json.dumps(line).encode() + b"\n" for line in lines)])
    assert transcript.session_id == "s-1" and transcript.final_message == "last"
    assert transcript.events == 7 and transcript.unknown_events == 1
    assert transcript.cost_usd is None and transcript.failure_reason is None


@pytest.mark.parametrize("sample", [SUCCESS, MAX_TURNS, AUTH], ids=lambda p: p.stem)
def test_a_restart_between_any_two_lines_gives_the_same_record(sample: Path):
    """A re-adopted run goes on from the record's fields with a new parser: a tool call read before the restart
    still meets its result after it."""
    lines = sample.read_bytes().splitlines(keepends=True)
    whole = read([sample.read_bytes()])[0].to_fields()
    for cut in range(len(lines) + 1):
        before = read([b"".join(lines[:cut])])[0]
        again = Transcript.from_fields(json.loads(json.dumps(before.to_fields())))
        reader, parser = JsonLines(), ClaudeEvents()
        for line in reader.feed(b"".join(lines[cut:])):
            apply_line(parser, again, line)
        assert again.to_fields() == whole, cut


def test_cost_survives_a_restart_through_the_record():
    transcript, _, _ = read([SUCCESS.read_bytes()])
    again = Transcript.from_fields(json.loads(json.dumps(transcript.to_fields())))
    assert again.to_fields() == transcript.to_fields()
    assert "cost_usd" not in Transcript().to_fields()  # codex says no cost: the record shows none
