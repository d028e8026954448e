"""``GET /events`` and ``GET /tasks/{task_id}/events``: the event log (host_runner/store/event_log.py) as a
resumable Server-Sent Events stream, or as JSON pages for clients that poll.

With ``Accept: text/event-stream`` the answer is a stream: every event after the client's position (``?after=``
or the ``Last-Event-ID`` header of a reconnecting EventSource) read from the store, then live ones as they are
committed, each as ``id: <global id>`` / ``event: <kind>`` / ``data: <the body a callback would carry>``. The
stream reads the store in its own request thread and waits on the log's condition between commits: the runner
never pushes into it, so a slow client slows nobody but itself, and what it has not read yet costs no memory.
It ends with ``event: overflow`` when the client falls more than ``HOST_RUNNER_STREAM_MAX_BEHIND`` events
behind the ones committed since it connected (it resumes from its last id; a backlog it asked for does not count), is cut off when it takes no data for ``HOST_RUNNER_STREAM_WRITE_TIMEOUT_SECONDS``,
starts with ``event: reset`` when retention removed events after its position, sends a comment every
``HOST_RUNNER_STREAM_KEEPALIVE_SECONDS`` while idle, and ends when the runner stops. Streams count against
``HOST_RUNNER_MAX_LOG_FOLLOWERS``: each holds a request thread, as a log follower does.

Without that ``Accept`` the answer is one JSON page: ``{"events": [...], "next_after": N, ...}``.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import falcon

from actors.service import RunnerService
from api.http_errors import ApiError, int_param, validation_error
from api.task_output import FollowerSlots, HeldResponse, client_gone
from host_runner.domain.errors import ShuttingDown
from host_runner.domain.record import STATUSES
from host_runner.ops.config import Config
from host_runner.store.event_log import EventFilter, EventLog, StreamEvent

__all__ = ["EventStream", "EventsResource"]

logger = logging.getLogger(__name__)

PAGE = 200  # events read from the store at a time by a stream
DEFAULT_LIMIT = 100  # events in a JSON page
MAX_LIMIT = 1000
WAIT_SLICE_SECONDS = 1.0  # a waiting stream looks this often whether its client left or the runner stops
MAX_ID = 2**63 - 1


def format_event(event: StreamEvent) -> bytes:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.data}\n\n".encode()


def control_event(kind: str, data: dict[str, Any]) -> bytes:
    """A stream's own event (reset, overflow): no ``id:``, so a client's Last-Event-ID stays its last real one."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventStream(HeldResponse):
    """One stream's body: the events after its position, then live ones, until it ends."""

    def __init__(self, log: EventLog, after: int, wanted: EventFilter, config: Config, gone: Callable[[], bool],
                 stopping: Callable[[], bool], release: Callable[[], None]) -> None:
        super().__init__(release)
        self.log = log
        self.position = after
        self.wanted = wanted
        self.keepalive = config.stream_keepalive_seconds
        self.max_behind = config.stream_max_behind
        self.gone = gone
        self.stopping = stopping

    def produce(self) -> Iterator[bytes]:
        try:
            yield from self._events()
        except ShuttingDown:
            return  # the log closed under us: the client resumes after the restart

    def _events(self) -> Iterator[bytes]:
        yield b": connected\n\n"  # sends the headers now (a comment: EventSource ignores it)
        floor = self.log.floor()
        if self.position < floor:
            yield control_event("reset", {
                "after": self.position, "floor": floor,
                "message": f"events up to {floor} may have been removed by retention; some after {self.position} "
                           "are gone",
            })
        checked = self.position  # every event up to this id has been looked at
        # Behind means behind what happened since it connected: the backlog it asked for is read at its own pace.
        connected_at = self.log.latest
        next_keepalive = time.monotonic() + self.keepalive
        while not self.stopping():
            latest = self.log.latest
            if (overflow := self._overflow(checked, connected_at)) is not None:
                yield overflow
                return
            page = self.log.after(checked, self.wanted, PAGE)
            for event in page:
                yield format_event(event)
                self.position = checked = event.id
                # Looked at after each event too: a write waits for the client, and a page read at once may
                # hold events committed after ``latest`` was read; behind is behind whatever page it is in.
                if (overflow := self._overflow(checked, connected_at)) is not None:
                    yield overflow
                    return
            if len(page) == PAGE:
                continue  # more to read at once
            checked = max(checked, latest)  # nothing else selected up to the newest id seen before reading
            if page:
                next_keepalive = time.monotonic() + self.keepalive
                continue
            if self.gone():
                return
            now = time.monotonic()
            if now >= next_keepalive:
                yield b": keep-alive\n\n"
                next_keepalive = now + self.keepalive
                continue
            self.log.wait(checked, min(WAIT_SLICE_SECONDS, next_keepalive - now))


    def _overflow(self, checked: int, connected_at: int) -> bytes | None:
        """The overflow event when the client is more than ``max_behind`` events behind those committed since it
        connected, else None."""
        latest = self.log.latest
        if latest - max(checked, connected_at) <= self.max_behind:
            return None
        return control_event("overflow", {
            "after": self.position, "latest": latest,
            "message": f"more than {self.max_behind} events behind: reconnect with Last-Event-ID {self.position} "
                       "to go on",
        })


class EventsResource:
    """``GET /events`` (all tasks, with filters) and ``GET /tasks/{task_id}/events`` (one task)."""

    def __init__(self, service: RunnerService, config: Config, slots: FollowerSlots,
                 stopping: Callable[[], bool]) -> None:
        self.service = service
        self.config = config
        self.slots = slots
        self.stopping = stopping

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._answer(req, resp, _text_param(req, "task_id"))

    def on_get_task(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        self.service.get(task_id)  # 404 for a task this runner does not know
        self._answer(req, resp, task_id)

    def _answer(self, req: falcon.Request, resp: falcon.Response, task_id: str | None) -> None:
        status = _text_param(req, "status")
        if status is not None and status not in STATUSES:
            raise validation_error("status", f"must be one of {', '.join(STATUSES)}")
        include = _text_param(req, "include")
        if include not in (None, "progress"):
            raise validation_error("include", "must be progress (or left out)")
        wanted = EventFilter(task_id=task_id, project_id=_text_param(req, "project_id"), status=status,
                             include_progress=include == "progress")
        after = _position(req)
        log = self.service.events()
        if "text/event-stream" not in (req.accept or ""):
            limit = int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            latest = log.latest  # read first: a page that is not full selected everything up to it
            events = log.after(after, wanted, limit)
            floor = log.floor()
            next_after = events[-1].id if len(events) == limit else max(after, latest, *(e.id for e in events))
            resp.media = {
                "events": [event.to_public() for event in events], "next_after": next_after,
                "latest": max(latest, next_after), "floor": floor, "reset": after < floor,
            }
            return
        if not self.slots.acquire():
            raise ApiError(falcon.HTTP_429, f"{self.slots.limit} log followers and event streams are already "
                                            "connected (HOST_RUNNER_MAX_LOG_FOLLOWERS)", headers={"Retry-After": "5"})
        sock = req.env.get("gunicorn.socket")
        if isinstance(sock, socket.socket):
            # A client that takes nothing for this long is cut off (its thread freed) rather than held forever.
            # The kernel's send timeout, not Python's settimeout: that would also make client_gone's peek wait.
            seconds = self.config.stream_write_timeout_seconds
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000)))
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # a proxy in front must not hold events back
        resp.stream = EventStream(log, after, wanted, self.config, gone=lambda: client_gone(sock),
                                  stopping=self.stopping, release=self.slots.release)


def _text_param(req: falcon.Request, name: str) -> str | None:
    value = req.get_param(name)
    if value is None or value == "":
        return None
    if len(value) > 1000:
        raise validation_error(name, "is too long")
    return value


def _position(req: falcon.Request) -> int:
    """Where the client is: ``?after=`` or, from a reconnecting EventSource, ``Last-Event-ID`` (0: the start)."""
    if req.get_param("after") is not None:
        return int_param(req, "after", 0, 0, MAX_ID)
    header = req.get_header("Last-Event-ID")
    if header is None or header.strip() == "":
        return 0
    try:
        value = int(header.strip())
    except ValueError:
        raise validation_error("Last-Event-ID", "must be an event id (an integer)") from None
    if not 0 <= value <= MAX_ID:
        raise validation_error("Last-Event-ID", "must be an event id (an integer)")
    return value
