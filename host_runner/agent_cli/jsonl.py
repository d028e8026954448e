"""A streaming reader of JSON Lines (one JSON object per line), as agent CLIs print their events.

It takes the CLI's stdout in chunks of any size (a line split across reads, several lines per read), holds at
most one line of ``max_line_bytes`` (a longer line is skipped, not held) and returns each complete line,
parsed; :func:`apply_line` then hands it to the CLI's :class:`EventParser`, which fills a
:class:`~host_runner.agent_cli.transcript.Transcript`. Nothing the CLI prints makes it raise: a line that is
not a JSON object is counted in ``invalid_events``, an event the parser does not know in ``unknown_events``
(both stay in stdout.log as printed).

Each line carries the stream offset just past it, so a reader can persist where to resume after a restart
without reading an event twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from host_runner.agent_cli.transcript import Transcript

__all__ = ["EventParser", "JsonLines", "Line", "MAX_LINE_BYTES", "apply_line"]

logger = logging.getLogger(__name__)

#: The longest event line held in memory; a longer one is skipped (it stays in stdout.log).
MAX_LINE_BYTES = 8 * 1024 * 1024


class EventParser(Protocol):
    """One CLI's events: :meth:`apply` puts what one event says into the transcript; False for an event it
    does not know."""

    def apply(self, event: dict[str, Any], transcript: Transcript) -> bool: ...


@dataclass(frozen=True)
class Line:
    """One complete line: its ``event`` (None when the line is not a JSON object: then ``text`` holds the
    line's start, shown as printed) and the stream offset just past it."""

    event: dict[str, Any] | None
    text: str
    end_offset: int


class JsonLines:
    """Feed it bytes as they arrive; it returns the lines completed by each chunk, parsed, in order."""

    def __init__(self, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        #: The stream offset of the next byte to be fed.
        self.offset = offset
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._skipping = False  # inside a line longer than max_line_bytes: drop until its newline

    @property
    def buffered(self) -> int:
        """Bytes held in memory right now (at most ``max_line_bytes``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Line]:
        lines: list[Line] = []
        base = self.offset
        self.offset += len(data)
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            end_offset = base + newline + 1
            if self._skipping or len(self._buffer) + newline - start > self.max_line_bytes:
                self._skipping = False
                lines.append(Line(None, f"(an event line longer than {self.max_line_bytes} bytes)", end_offset))
            else:
                self._buffer += data[start:newline]
                line = _parse(bytes(self._buffer), end_offset)
                if line is not None:
                    lines.append(line)
            self._buffer.clear()
            start = newline + 1
        if not self._skipping:
            self._buffer += data[start:]
            if len(self._buffer) > self.max_line_bytes:
                self._buffer.clear()
                self._skipping = True
        return lines


def _parse(line: bytes, end_offset: int) -> Line | None:
    text = line.strip()
    if not text:
        return None
    try:
        event = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        event = None
    if isinstance(event, dict):
        return Line(event, "", end_offset)
    return Line(None, text[:2000].decode("utf-8", errors="replace"), end_offset)


def apply_line(parser: EventParser, transcript: Transcript, line: Line) -> None:
    """Put one line into ``transcript``: an event through ``parser`` (unknown or unreadable ones counted), other
    text as it was printed (a CLI may print a plain warning); never raises for what the CLI printed."""
    if line.event is None:
        transcript.invalid_events += 1
        transcript.say(line.text)
        return
    transcript.events += 1
    try:
        known = parser.apply(line.event, transcript)
    except Exception:  # an event shaped unlike any version we know: kept in stdout.log, counted here
        logger.warning("an agent CLI event of type %r could not be read", str(line.event.get("type"))[:100])
        known = False
    if not known:
        transcript.unknown_events += 1
