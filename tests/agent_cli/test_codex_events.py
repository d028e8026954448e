"""The codex event parser and the shared transcript, over events recorded from the real codex 0.169.0
(samples/, recorded against tests/support/model_server.py): any chunking gives the same record, the buffer
stays bounded, unknown or broken lines are counted and never raise."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from host_runner.agent_cli import CodexEvents, Transcript, handoff_for
from host_runner.agent_cli.transcript import HANDOFF_SUMMARY_BYTES
from support.event_feed import assert_any_split_gives_the_same_record, feed

SAMPLES = Path(__file__).parent / "samples"
SUCCESS = SAMPLES / "codex-0.169.0-success-gpt-5.5.jsonl"
WARNING = SAMPLES / "codex-0.169.0-success-test-model.jsonl"
SERVER_ERROR = SAMPLES / "codex-0.169.0-server-error-gpt-5.5.jsonl"


def read(chunks: list[bytes], max_line_bytes: int = 1 << 20) -> tuple[Transcript, str, int]:
    """The transcript, readable text and resume offset from feeding ``chunks`` in order to one parser."""
    return feed(CodexEvents(), chunks, max_line_bytes)


def test_a_successful_run_gives_the_record_fields():
    transcript, text, offset = read([SUCCESS.read_bytes()])
    fields = transcript.to_fields()
    assert fields["session_id"] == "01a23702-3294-7d03-8268-f92f326b7812"
    assert fields["final_message"] == "All done: wrote made.txt and notes.txt.\nSecond line, ünïcode."
    assert fields["usage"] == {"input_tokens": 480, "cached_input_tokens": 80, "output_tokens": 28}
    assert fields["files_changed"] == [{"path": "/work/project/notes.txt", "kind": "add"}]
    assert fields["commands"] == [
        {"command": "/bin/bash -lc 'echo hi > made.txt && echo ran'", "exit_code": 0},
        {"command": "/bin/bash -lc 'ls missing-file'", "exit_code": 2},
    ]
    assert fields["events"] == 10 and transcript.unknown_events == 0 and transcript.invalid_events == 0
    assert offset == len(SUCCESS.read_bytes())
    assert transcript.failure_reason is None
    assert "$ /bin/bash -lc 'echo hi > made.txt && echo ran'  (exit 0)\n  ran\n" in text
    assert "(exit 2)" in text and "add /work/project/notes.txt" in text
    assert text.endswith("All done: wrote made.txt and notes.txt.\nSecond line, ünïcode.\n")
    assert '"type"' not in text
    assert transcript.handoff() == {"summary": fields["final_message"], "details": None}


def test_an_error_item_is_a_warning_not_a_failure():
    transcript, text, _ = read([WARNING.read_bytes()])
    assert transcript.failure_reason is None and transcript.error is None
    assert "warning: Model metadata for `test-model` not found" in text
    assert transcript.final_message.startswith("All done")


def test_a_failed_turn_says_why():
    transcript, text, _ = read([SERVER_ERROR.read_bytes()])
    assert transcript.failure_reason == "agent_error"
    assert transcript.error == "We’re currently experiencing high demand, which may cause temporary errors."
    assert transcript.handoff() is None
    auth = b'{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: nope"}}\n'
    assert read([auth])[0].failure_reason == "auth_required"


@pytest.mark.parametrize("sample", [SUCCESS, WARNING, SERVER_ERROR], ids=lambda p: p.stem)
def test_split_at_every_byte_boundary_gives_the_same_record(sample: Path):
    assert_any_split_gives_the_same_record(sample.read_bytes(), CodexEvents)


def test_unknown_broken_and_oversized_lines_are_counted_not_fatal():
    lines = [
        b'{"type":"thread.started","thread_id":"t-1"}',
        b'{"type":"item.plan.delta","item_id":"x","delta":"d"}',  # a newer event: unknown, kept in stdout.log
        b'{"type":"item.completed","item":{"id":"i","type":"hologram"}}',  # an unknown item type
        b'{"type":"turn.completed","usage":"lots"}',  # shaped unlike the version we know
        b'{"type":"item.completed","item":{"id":"i","type":"command_execution","command":5}}',
        b"plain text the CLI printed",
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b'{"type":"item.completed","item":{"id":"x","type":"agent_message","text":"' + b"y" * 5000 + b'"}}',
        b'{"type":"item.completed","item":{"id":"m","type":"agent_message","text":"last"}}',
    ]
    transcript, text, _ = read([b"\n".join(lines) + b"\n"], max_line_bytes=1000)
    assert transcript.session_id == "t-1"
    assert transcript.final_message == "last"
    assert transcript.events == 6  # the JSON objects that fit
    assert transcript.unknown_events == 2
    assert transcript.invalid_events == 4  # text, not UTF-8, not an object, too long
    assert "plain text the CLI printed" in text and "longer than 1000 bytes" in text


def test_random_bytes_never_raise():
    rng = random.Random(19)
    base = SUCCESS.read_bytes()
    for _ in range(200):
        data = bytearray(base)
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.randrange(len(data))
        read([bytes(data[:cut]), bytes(data[cut:])], max_line_bytes=300)


def test_commands_keep_the_newest_within_the_budget_and_the_count():
    transcript = Transcript()
    for number in range(2000):
        transcript.command(f"echo {number} " + "x" * 100, number % 3)
    fields = transcript.to_fields()
    assert fields["commands_count"] == 2000
    assert 1 < len(fields["commands"]) < 2000
    assert fields["commands"][-1]["command"].startswith("echo 1999 ")
    assert len(json.dumps(fields["commands"])) <= 40 * 1024


def test_the_transcript_survives_a_restart_through_the_record():
    transcript, _, _ = read([SUCCESS.read_bytes()])
    fields: dict[str, Any] = json.loads(json.dumps(transcript.to_fields()))
    again = Transcript.from_fields(fields)
    assert again.to_fields() == transcript.to_fields()
    again.add_usage(1, 0, 1)
    assert again.usage["input_tokens"] == 481


def test_handoff_trims_the_summary_to_4_kib_on_a_character_boundary():
    assert handoff_for(None) is None and handoff_for("  \n ") is None
    long = "é" * 3000  # 6000 bytes
    handoff = handoff_for(long)
    assert handoff is not None
    assert len(handoff["summary"].encode()) <= HANDOFF_SUMMARY_BYTES
    assert handoff["summary"] == "é" * (HANDOFF_SUMMARY_BYTES // 2)
    assert handoff["details"] == long
