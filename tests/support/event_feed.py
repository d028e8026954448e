"""Feeding an agent CLI's recorded event stream (tests/agent_cli/samples/) to its parser in chunks, as the runner
reads it from a growing stdout file: the parser tests check that any chunking gives the same record."""

from __future__ import annotations

from collections.abc import Callable

from host_runner.agent_cli import EventParser, JsonLines, Transcript, apply_line

__all__ = ["assert_any_split_gives_the_same_record", "feed"]


def feed(parser: EventParser, chunks: list[bytes], max_line_bytes: int = 1 << 20) -> tuple[Transcript, str, int]:
    """The transcript, readable text and resume offset from feeding ``chunks`` in order to one ``parser``."""
    reader, transcript = JsonLines(max_line_bytes=max_line_bytes), Transcript()
    text, offset = "", 0
    for chunk in chunks:
        for line in reader.feed(chunk):
            apply_line(parser, transcript, line)
            offset = line.end_offset
        text += transcript.take_lines()
        assert reader.buffered <= max_line_bytes
    return transcript, text, offset


def assert_any_split_gives_the_same_record(data: bytes, new_parser: Callable[[], EventParser]) -> None:
    """``data`` split in two at every byte boundary, and fed one byte at a time, gives the record, text and offset
    it gives in one piece."""
    whole = feed(new_parser(), [data])
    for split in range(len(data) + 1):
        parts = feed(new_parser(), [data[:split], data[split:]])
        assert parts[0].to_fields() == whole[0].to_fields(), split
        assert parts[1:] == whole[1:], split
    one_byte = feed(new_parser(), [data[i:i + 1] for i in range(len(data))])
    assert one_byte[0].to_fields() == whole[0].to_fields() and one_byte[1:] == whole[1:]
