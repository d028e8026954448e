"""The agent-runner frame parser: frames split at every byte boundary, several per read, garbage, invalid JSON,
oversized frames, and offsets that let a reader resume without losing or repeating a frame."""

from __future__ import annotations

import json

from host_runner.agent.frames import END, START, Frame, FrameParser, InvalidFrame, render_frame

FIRST = {"status": "success", "result": "héllo — wörld", "newSessionId": "s-1"}
SECOND = {"status": "error", "result": None, "error": "boom"}
STREAM = b"noise before\n" + render_frame(FIRST) + b"between\n" + render_frame(SECOND) + b"tail"


def frames_of(events) -> list[dict]:
    return [event.data for event in events if isinstance(event, Frame)]


def test_whole_stream_in_one_read():
    events = FrameParser().feed(STREAM)
    assert frames_of(events) == [FIRST, SECOND]
    assert not any(isinstance(event, InvalidFrame) for event in events)


def test_split_into_two_reads_at_every_byte_boundary():
    for cut in range(len(STREAM) + 1):
        parser = FrameParser()
        events = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:])
        assert frames_of(events) == [FIRST, SECOND], f"cut at {cut}"


def test_split_into_three_reads_at_every_pair_of_boundaries_of_a_frame():
    data = render_frame(FIRST)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            parser = FrameParser()
            events = parser.feed(data[:first]) + parser.feed(data[first:second]) + parser.feed(data[second:])
            assert frames_of(events) == [FIRST], (first, second)


def test_one_byte_at_a_time():
    parser = FrameParser()
    events = []
    for index in range(len(STREAM)):
        events += parser.feed(STREAM[index:index + 1])
    assert frames_of(events) == [FIRST, SECOND]


def test_invalid_json_is_skipped_and_reported_and_the_next_frame_kept():
    data = START + b"\n{nope\n" + END + b"\n" + START + b"[1, 2]" + END + render_frame(FIRST)
    events = FrameParser().feed(data)
    assert frames_of(events) == [FIRST]
    invalid = [event for event in events if isinstance(event, InvalidFrame)]
    assert [event.reason.split(" (")[0] for event in invalid] == ["invalid JSON", "not a JSON object"]


def test_bad_utf8_is_invalid():
    events = FrameParser().feed(START + b'{"result": "\xff"}' + END)
    assert isinstance(events[0], InvalidFrame) and events[0].reason == "not UTF-8"


def test_a_frame_without_end_marker_does_not_swallow_the_next_frame():
    data = START + b'{"result": "cut off' + b"\n" + render_frame(FIRST)
    events = FrameParser().feed(data)
    assert frames_of(events) == [FIRST]
    assert isinstance(events[0], InvalidFrame)


def test_markers_without_newlines_and_several_frames_per_read():
    data = b"".join(START + json.dumps({"result": str(index)}).encode() + END for index in range(50))
    assert [frame["result"] for frame in frames_of(FrameParser().feed(data))] == [str(i) for i in range(50)]


def test_memory_stays_bounded_outside_and_inside_frames():
    parser = FrameParser(max_frame_bytes=1000)
    for _ in range(100):
        parser.feed(b"x" * 10_000)  # garbage: only a possible partial marker is kept
        assert parser.buffered < len(START)
    parser.feed(START)
    for _ in range(100):
        assert parser.feed(b"y" * 10_000) == []
        assert parser.buffered <= 1000 + len(END)
    events = parser.feed(END + render_frame(FIRST))
    assert isinstance(events[0], InvalidFrame) and events[0].size >= 1_000_000
    assert frames_of(events) == [FIRST]


def test_offsets_let_a_reader_resume_without_loss_or_repeats():
    events = FrameParser().feed(STREAM)
    first_end = events[0].end_offset
    assert STREAM[:first_end].endswith(END)
    # A new parser started at the first frame's end offset sees exactly the second frame.
    resumed = FrameParser(offset=first_end).feed(STREAM[first_end:])
    assert frames_of(resumed) == [SECOND]
    assert resumed[-1].end_offset == events[-1].end_offset
