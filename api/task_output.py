"""``GET /tasks/{task_id}/logs``: a run's stdout or stderr from an offset, or followed while the task runs.

Log files are written by the task's processes directly (see host_runner.run.process_group), so reading them needs no
actor: the resource asks the service for the run's output (:class:`actors.service.RunOutput`: the file and
whether the run is over) and reads the file itself. A follower polls the file in its request thread and asks
whether the run is over now and then; it ends
when the run is terminal (after reading what the run wrote last), when the client went away (checked on the
socket gunicorn hands over, without writing anything), or when the server is stopping. Followers are capped
(``HOST_RUNNER_MAX_LOG_FOLLOWERS``) because each one holds a request thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import falcon

from actors.service import RunnerService
from api.http_errors import ApiError, int_param, validation_error

logger = logging.getLogger(__name__)

STREAMS = ("stdout", "stderr")
DEFAULT_LIMIT = 1024 * 1024
MAX_LIMIT = 16 * 1024 * 1024
CHUNK = 64 * 1024


class FollowerSlots:
    """At most ``limit`` log followers at once; :attr:`active` is shown in /metrics."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1


def read_range(path: Path, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path`` from ``offset``; b'' when the file does not exist (yet)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    try:
        return os.pread(fd, limit, offset)
    finally:
        os.close(fd)


def client_gone(sock: socket.socket | None) -> bool:
    """True once the client closed its end (a peek reads EOF or the connection was reset)."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # connected, nothing sent: the normal case
    except OSError:
        return True


class HeldResponse:
    """The WSGI body of a response that holds its request thread (a followed log, an event stream). A class rather
    than a bare generator so that :meth:`close` (which every WSGI server calls, also when the client went away)
    frees the follower slot even if iteration never began. Subclasses produce the chunks in :meth:`produce`."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._chunks: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._chunks = self.produce()
        return self._chunks

    def produce(self) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()  # type: ignore[attr-defined]
        if self._release is not None:
            self._release()
            self._release = None


class LogFollower(HeldResponse):
    """A followed log: what the run writes, until it ends."""

    def __init__(self, path: Path, offset: int, is_over: Callable[[], bool], gone: Callable[[], bool],
                 stopping: Callable[[], bool], release: Callable[[], None], poll_seconds: float = 0.1,
                 status_every: float = 0.5) -> None:
        super().__init__(release)
        self.path = path
        self.offset = offset
        self.is_over = is_over
        self.gone = gone
        self.stopping = stopping
        self.poll_seconds = poll_seconds
        self.status_every = status_every

    def _drain(self) -> Iterator[bytes]:
        while data := read_range(self.path, self.offset, CHUNK):
            self.offset += len(data)
            yield data

    def produce(self) -> Iterator[bytes]:
        return self._follow()

    def _follow(self) -> Iterator[bytes]:
        # An empty first item makes gunicorn send the status and headers now: a client following a task that
        # has printed nothing yet learns at once that it is connected (PEP 3333 lets servers wait for data).
        yield b""
        next_status_check = 0.0
        while True:
            data = read_range(self.path, self.offset, CHUNK)
            if data:
                self.offset += len(data)
                yield data
                continue
            if self.gone() or self.stopping():
                return
            now = time.monotonic()
            if now >= next_status_check:
                next_status_check = now + self.status_every
                if self.is_over():
                    # Terminal means the run's processes are gone: what is in the file now is all there is.
                    yield from self._drain()
                    return
            time.sleep(self.poll_seconds)


class TaskLogsResource:
    """``GET /tasks/{task_id}/logs?stream=stdout|stderr&offset=N&limit=N&follow=true&run_id=R``."""

    def __init__(self, service: RunnerService, slots: FollowerSlots, stopping: Callable[[], bool]) -> None:
        self.service = service
        self.slots = slots
        self.stopping = stopping

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        stream = req.get_param("stream") or "stdout"
        if stream not in STREAMS:
            raise validation_error("stream", "must be stdout or stderr")
        offset = int_param(req, "offset", 0, 0, 2**62)
        limit = int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        try:
            follow = req.get_param_as_bool("follow", default=False)
        except falcon.HTTPInvalidParam:
            raise validation_error("follow", "must be true or false") from None
        run_id = req.get_param("run_id")
        output = self.service.logs(task_id, stream, run_id)
        record, path = output.record, output.path
        resp.content_type = "application/octet-stream"
        resp.set_header("X-Run-Id", record.run_id)
        resp.set_header("X-Task-Status", record.status)
        resp.set_header("X-Log-Offset", str(offset))
        if not follow:
            data = read_range(path, offset, limit)
            resp.data = data
            resp.set_header("X-Next-Offset", str(offset + len(data)))
            resp.set_header("X-Log-Size", str(output.size()))
            return
        if not self.slots.acquire():
            raise ApiError(falcon.HTTP_429, f"{self.slots.limit} log followers are already connected "
                           "(HOST_RUNNER_MAX_LOG_FOLLOWERS); read with offsets or try again later")
        sock = req.env.get("gunicorn.socket")
        resp.stream = LogFollower(
            path, offset, is_over=output.is_over, gone=lambda: client_gone(sock), stopping=self.stopping,
            release=self.slots.release,
        )


__all__ = ["FollowerSlots", "HeldResponse", "LogFollower", "TaskLogsResource", "client_gone", "read_range"]
