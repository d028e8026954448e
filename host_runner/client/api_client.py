"""A small Python client for the host-runner API (requests-based), used by the CLI and the tests.

    client = Client()                      # HOST_RUNNER_URL, HOST_RUNNER_API_TOKEN(_FILE) from the environment
    record = client.submit({"task_id": "t1", "run_id": "r1", "prompt": "hello"}).record
    for chunk in client.follow("t1"):      # the run's stdout as it is written, until the run ends
        sys.stdout.buffer.write(chunk)
    final = client.wait("t1")

Errors the API answers come back as :class:`ApiError` with the fields of the error body; a runner that
cannot be reached raises ``requests.ConnectionError`` as usual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from host_runner.client.events import READ_TIMEOUT_SECONDS, StreamEvent, follow_events
from host_runner.ops.api_token import token_from_environment

DEFAULT_URL = "http://127.0.0.1:8765"
TERMINAL_STATUSES = frozenset({"success", "failed", "canceled"})

#: Called with every response (and whether its body was left unread because it is streamed).
ResponseHook = Callable[[requests.Response, bool], None]


class ApiError(Exception):
    """The API answered with an error: ``status`` (HTTP code) and the error body's fields."""

    def __init__(self, status: int, error: str, detail: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.field: str | None = body.get("field")
        self.holder_task_id: str | None = body.get("holder_task_id")
        self.body = body


@dataclass(frozen=True)
class Submitted:
    """The record of a submission; ``created`` is False when the same task_id/run_id was already known."""

    record: dict[str, Any]
    created: bool


@dataclass(frozen=True)
class LogChunk:
    """Bytes of a run's log from ``offset``; ask again from ``next_offset`` for more."""

    data: bytes
    offset: int
    next_offset: int
    size: int
    run_id: str
    status: str


class Client:
    """One runner's API. ``url`` and ``token`` default to HOST_RUNNER_URL and HOST_RUNNER_API_TOKEN (or the content
    of the file HOST_RUNNER_API_TOKEN_FILE, read as the runner reads it: ValueError when it may not be used)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 session: requests.Session | None = None, on_response: ResponseHook | None = None) -> None:
        self.url = (url or os.environ.get("HOST_RUNNER_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else token_from_environment(os.environ)
        self.timeout = timeout
        self.session = session or requests.Session()
        self.on_response = on_response

    # --- plumbing ----------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                stream: bool = False, timeout: float | tuple[float, float] | None = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        """One request; raises :class:`ApiError` for an error status."""
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        response = self.session.request(method, f"{self.url}{path}", params=query, json=json, headers=headers,
                                        stream=stream, timeout=timeout or self.timeout)
        streamed = stream and response.ok
        if self.on_response is not None:
            self.on_response(response, streamed)
        if not response.ok:
            try:
                body = response.json()
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            raise ApiError(response.status_code, str(body.get("error") or response.reason),
                           str(body.get("detail") or response.text[:200]), body)
        return response

    # --- tasks -------------------------------------------------------------------------------------------------
    def submit(self, body: dict[str, Any]) -> Submitted:
        response = self.request("POST", "/tasks/submit", json=body)
        return Submitted(response.json(), created=response.status_code == 202)

    def get(self, task_id: str) -> dict[str, Any]:
        """The task's newest run."""
        return self.request("GET", f"/tasks/{task_id}").json()

    def list(self, *, status: str | None = None, project_id: str | None = None, limit: int | None = None
             ) -> list[dict[str, Any]]:
        params = {"status": status, "project_id": project_id, "limit": limit}
        return self.request("GET", "/tasks", params=params).json()["tasks"]

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Stops the task and returns its final record."""
        return self.request("POST", f"/tasks/{task_id}/cancel").json()

    def send_message(self, task_id: str, text: str) -> dict[str, Any]:
        """Agent tasks: a follow-up message for the running agent; returns ``{"task_id", "run_id", "message_id"}``."""
        return self.request("POST", f"/tasks/{task_id}/messages", json={"text": text}).json()

    def close(self, task_id: str) -> dict[str, Any]:
        """Agent tasks: ask the agent to finish its current query and exit."""
        return self.request("POST", f"/tasks/{task_id}/close").json()

    def wait(self, task_id: str, *, timeout: float | None = None, interval: float = 0.5,
             on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until the task's newest run is terminal; ``on_change`` sees every new status (and pid)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[Any, ...] | None = None
        while True:
            record = self.get(task_id)
            state = (record["run_id"], record["status"], record.get("pid"))
            if state != seen and on_change is not None:
                on_change(record)
            seen = state
            if record["status"] in TERMINAL_STATUSES:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still {record['status']} after {timeout} s")
            time.sleep(interval)

    # --- logs --------------------------------------------------------------------------------------------------
    def logs(self, task_id: str, *, stream: str = "stdout", offset: int = 0, limit: int | None = None,
             run_id: str | None = None) -> LogChunk:
        response = self.request("GET", f"/tasks/{task_id}/logs",
                                params={"stream": stream, "offset": offset, "limit": limit, "run_id": run_id})
        headers = response.headers
        return LogChunk(response.content, offset, int(headers["X-Next-Offset"]), int(headers["X-Log-Size"]),
                        headers["X-Run-Id"], headers["X-Task-Status"])

    def follow(self, task_id: str, *, stream: str = "stdout", offset: int = 0, run_id: str | None = None,
               reconnect_delay: float = 0.5) -> Iterator[bytes]:
        """The run's log from ``offset`` as it is written, until the run ends.

        The server ends a followed response when the run ends, and also when it is stopping; the stream
        therefore ends only once the run is terminal, reconnecting from where it stopped otherwise.
        """
        while True:
            params = {"stream": stream, "offset": offset, "follow": "true", "run_id": run_id}
            with self.request("GET", f"/tasks/{task_id}/logs", params=params, stream=True, timeout=None) as response:
                run_id = response.headers["X-Run-Id"]  # stay on this run even if another one starts
                try:
                    for chunk in response.iter_content(chunk_size=None):
                        offset += len(chunk)
                        yield chunk
                except requests.exceptions.ChunkedEncodingError:
                    pass  # the connection was cut: look where the run is, then resume
            if self.logs(task_id, stream=stream, offset=offset, limit=1, run_id=run_id).status in TERMINAL_STATUSES:
                rest = self.logs(task_id, stream=stream, offset=offset, run_id=run_id)
                while rest.data:
                    yield rest.data
                    rest = self.logs(task_id, stream=stream, offset=rest.next_offset, run_id=run_id)
                return
            time.sleep(reconnect_delay)

    # --- events ------------------------------------------------------------------------------------------------
    def events(self, *, after: int = 0, task_id: str | None = None, project_id: str | None = None,
               status: str | None = None, include: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """One page of events after ``after``: ``{"events", "next_after", "latest", "floor", "reset"}``."""
        params = {"after": after, "task_id": task_id, "project_id": project_id, "status": status,
                  "include": include, "limit": limit}
        return self.request("GET", "/events", params=params).json()

    def follow_events(self, *, after: int = 0, task_id: str | None = None, project_id: str | None = None,
                      status: str | None = None, include: str | None = None,
                      reconnect_delay: float = 1.0) -> Iterator[StreamEvent]:
        """Every event after ``after`` as it happens, resuming by itself after a disconnect or a restart (see
        :func:`host_runner.client.events.follow_events`); runs until the caller stops reading."""
        params = {"task_id": task_id, "project_id": project_id, "status": status, "include": include}

        def open_stream(position: int) -> requests.Response:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(position)}
            return self.request("GET", "/events", params=params, stream=True, headers=headers,
                                timeout=(self.timeout, READ_TIMEOUT_SECONDS))

        return follow_events(open_stream, after, reconnect_delay)

    # --- operations ----------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health").json()

    def debug_actors(self, timeout: float | None = None) -> dict[str, Any]:
        return self.request("GET", "/debug/actors", params={"timeout": timeout}).json()

    def debug_threads(self) -> dict[str, Any]:
        return self.request("GET", "/debug/threads").json()

    def debug_threads_text(self) -> str:
        return self.request("GET", "/debug/threads", params={"format": "text"}).text

    def metrics(self) -> str:
        return self.request("GET", "/metrics").text

    def openapi(self) -> dict[str, Any]:
        return self.request("GET", "/openapi.json").json()
