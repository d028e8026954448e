"""A Server-Sent Events client for tests: reads a stream of the real service in a thread, keeping every event (the
runner's own parser, host_runner.client.events, turns lines into events), until told to stop or the stream ends."""

from __future__ import annotations

import threading
import time
from typing import Any

import socket

import requests
from requests.adapters import HTTPAdapter

from host_runner.client.events import StreamEvent, parse_stream

__all__ = ["StreamReader"]


class _SmallBuffers(HTTPAdapter):
    """Connections with a small receive buffer (set before connecting, so the window stays small)."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = [(socket.SOL_SOCKET, socket.SO_RCVBUF, self.size),
                                    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        super().init_poolmanager(*args, **kwargs)


class StreamReader:
    """``GET base + path`` with ``Accept: text/event-stream`` (and ``Last-Event-ID`` when given), read in a thread.
    ``events`` grows as events arrive (with their arrival time in ``arrived``); ``ended`` is set at the end."""

    def __init__(self, base: str, path: str = "/events", *, last_event_id: int | None = None,
                 params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 receive_buffer: int | None = None, paused: bool = False) -> None:
        """``receive_buffer``: a small SO_RCVBUF, so that a client that does not read soon stalls the server's
        writes; ``paused``: read nothing until :meth:`resume`."""
        self.events: list[StreamEvent] = []
        self.reading = threading.Event()
        if not paused:
            self.reading.set()
        self.arrived: list[float] = []
        self.comments = 0
        self.ended = threading.Event()
        self.error: BaseException | None = None
        request_headers = {"Accept": "text/event-stream", **(headers or {})}
        if last_event_id is not None:
            request_headers["Last-Event-ID"] = str(last_event_id)
        session = requests.Session()
        if receive_buffer is not None:
            session.mount("http://", _SmallBuffers(receive_buffer))
        self.response = session.get(base + path, params=params, headers=request_headers, stream=True,
                                    timeout=(5, 120))
        self.status_code = self.response.status_code
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status_code == 200:
            self._thread.start()
        else:
            self.ended.set()

    def _lines(self):  # type: ignore[no-untyped-def]
        for line in self.response.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                self.comments += 1
            yield line

    def _read(self) -> None:
        self.reading.wait()
        try:
            for event in parse_stream(self._lines()):
                self.events.append(event)
                self.arrived.append(time.monotonic())
        except (requests.RequestException, AttributeError, ValueError) as exc:  # closed under the reader
            self.error = exc
        finally:
            self.ended.set()

    def ids(self) -> list[int]:
        return [event.id for event in self.events if event.id is not None]

    def of_kind(self, kind: str) -> list[StreamEvent]:
        return [event for event in self.events if event.event == kind]

    def resume(self) -> None:
        self.reading.set()

    def close(self) -> None:
        self.reading.set()
        self.response.close()
        self.ended.wait(10)
