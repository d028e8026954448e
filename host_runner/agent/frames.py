"""The agent-runner's framed results: a streaming parser for ``---NANOCLAW_OUTPUT_START---`` … ``_END---``.

An agent prints each result as a JSON object between two marker lines; anything outside frames is ordinary
log output. The parser takes the agent's stdout in chunks of any size (a frame may be split across reads, a
read may hold several frames) and keeps only a bounded buffer: outside a frame, the few bytes that could be the
start of a marker; inside one, at most ``max_frame_bytes`` of payload (a larger frame is skipped, not held).

Every event carries the stream offset just past its end marker, so a reader can persist where to resume after
a restart without reading any frame twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

START = b"---NANOCLAW_OUTPUT_START---"
END = b"---NANOCLAW_OUTPUT_END---"
#: The largest frame payload kept in memory; a larger frame is reported invalid (it stays in stdout.log).
MAX_FRAME_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Frame:
    """A parsed result object (``status``, ``result``, ``newSessionId``, ``error``… as the agent printed them)."""

    data: dict[str, Any]
    end_offset: int


@dataclass(frozen=True)
class InvalidFrame:
    """A frame that was skipped; ``reason`` says why (never its content, which may echo a prompt)."""

    reason: str
    size: int
    end_offset: int


FrameEvent = Frame | InvalidFrame


class FrameParser:
    """Feed it bytes as they arrive; it returns the frames completed by each chunk, in order."""

    def __init__(self, offset: int = 0, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        #: The stream offset of the next byte to be fed.
        self.offset = offset
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._inside = False
        self._scanned = 0  # inside a frame: how much of the buffer is known not to hold the end marker
        self._oversize = 0  # inside a too-large frame: how many payload bytes were dropped

    @property
    def buffered(self) -> int:
        """Bytes held in memory right now (bounded by ``max_frame_bytes`` plus a marker)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        self._buffer += data
        self.offset += len(data)
        progress = True
        while progress:
            progress = self._take_frame(events) if self._inside else self._find_start()
        return events

    def _find_start(self) -> bool:
        """Outside a frame: drop what precedes a start marker. True when one was found."""
        index = self._buffer.find(START)
        if index < 0:
            # Keep only what could be the beginning of a marker split across reads.
            keep = len(START) - 1
            if len(self._buffer) > keep:
                del self._buffer[:-keep]
            return False
        del self._buffer[: index + len(START)]
        self._inside, self._scanned, self._oversize = True, 0, 0
        return True

    def _take_frame(self, events: list[FrameEvent]) -> bool:
        """Inside a frame: complete it if its end marker arrived. True when a frame was completed."""
        index = self._buffer.find(END, max(0, self._scanned - len(END) + 1))
        if index < 0:
            self._scanned = len(self._buffer)
            if len(self._buffer) > self.max_frame_bytes + len(END):
                # Too large to hold: drop the payload, keep looking for the end marker.
                dropped = len(self._buffer) - (len(END) - 1)
                self._oversize += dropped
                del self._buffer[:dropped]
                self._scanned = len(self._buffer)
            return False
        payload = bytes(self._buffer[:index])
        del self._buffer[: index + len(END)]
        self._inside = False
        end_offset = self.offset - len(self._buffer)
        if self._oversize:
            size = self._oversize + len(payload)
            events.append(InvalidFrame(f"larger than {self.max_frame_bytes} bytes", size, end_offset))
            return True
        restart = payload.rfind(START)
        if restart >= 0:
            # A frame that never ended, followed by a complete one: report the broken one, keep the good one.
            events.append(InvalidFrame("no end marker before the next start marker", restart, end_offset))
            payload = payload[restart + len(START):]
        events.append(decode_frame(payload, end_offset))
        return True


def decode_frame(payload: bytes, end_offset: int) -> FrameEvent:
    """A frame's payload as a :class:`Frame`, or an :class:`InvalidFrame` saying what is wrong with it."""
    try:
        data = json.loads(payload.decode("utf-8").strip())
    except UnicodeDecodeError:
        return InvalidFrame("not UTF-8", len(payload), end_offset)
    except (ValueError, RecursionError) as exc:
        reason = f"invalid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else "invalid JSON"
        return InvalidFrame(reason, len(payload), end_offset)
    if not isinstance(data, dict):
        return InvalidFrame("not a JSON object", len(payload), end_offset)
    return Frame(data, end_offset)


def render_frame(data: dict[str, Any]) -> bytes:
    """A frame as an agent prints it (used by tests and tools)."""
    return START + b"\n" + json.dumps(data).encode() + b"\n" + END + b"\n"
