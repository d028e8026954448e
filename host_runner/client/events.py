"""Reading the runner's event stream (``GET /events``, ``GET /tasks/{id}/events``) as a client: Server-Sent Events
parsed as they arrive, and a follower that reconnects where it stopped (``Last-Event-ID``) so that a dropped
connection, an ``overflow`` or a runner restart loses and repeats nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["StreamEvent", "follow_events", "parse_stream"]

#: Reconnect when nothing, not even a keep-alive comment (every 15 s by default), arrived for this long.
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class StreamEvent:
    """One event: ``id`` None for the stream's own (``reset``, ``overflow``), ``data`` its decoded JSON."""

    id: int | None
    event: str
    data: Any


def parse_stream(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Events from the lines of a ``text/event-stream`` body (comments skipped, multi-line data joined)."""
    event_id: int | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield StreamEvent(event_id, kind, value)
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value_text = line.partition(":")
        value_text = value_text[1:] if value_text.startswith(" ") else value_text
        if name == "id" and value_text.isdigit():
            event_id = int(value_text)
        elif name == "event":
            kind = value_text
        elif name == "data":
            data.append(value_text)


def follow_events(open_stream: Callable[[int], requests.Response], after: int = 0,
                  reconnect_delay: float = 1.0) -> Iterator[StreamEvent]:
    """Every event after ``after``, for as long as the caller reads: ``open_stream(position)`` opens a stream from
    a position; it is opened again from the last id seen whenever the stream ends or breaks. Control events
    (``reset``, ``overflow``) are passed on too, so the caller knows when events were lost to retention."""
    position = after
    while True:
        try:
            with open_stream(position) as response:
                for event in parse_stream(response.iter_lines(decode_unicode=True)):
                    if event.id is not None:
                        position = event.id
                    yield event
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                requests.exceptions.Timeout):
            pass  # cut off, or the runner restarts: resume from the last id
        time.sleep(reconnect_delay)
