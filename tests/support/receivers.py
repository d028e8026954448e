"""A real HTTP receiver for callbacks on 127.0.0.1 that can answer errors, be slow, drop connections or hang,
and the receiver-side signature check the README documents: what an orchestrator would run, so the tests see
the runner's callbacks as one would."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CallbackReceiver", "Received", "verify_signature"]


@dataclasses.dataclass
class Received:
    """One request the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    code: int = 200  # what the receiver answered (0: it dropped the connection instead)


class CallbackReceiver:
    """An HTTP server on 127.0.0.1 recording every POST.

    ``responses`` is a list of status codes to answer, consumed one per request, then ``default`` (200);
    ``delay`` makes it slow; ``resets`` drops that many connections after reading the request (the sender never
    learns whether it arrived); ``hang`` (an Event) makes requests wait until it is set. ``port`` binds a given
    port (to bring a receiver "back" where a dead one was).
    """

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.responses: list[int] = []
        self.default = 200
        self.delay = 0.0
        self.resets = 0
        self.hang: threading.Event | None = None
        self.hanging = 0  # requests waiting on ``hang`` right now
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                hang = receiver.hang
                if hang is not None:
                    with receiver.lock:
                        receiver.hanging += 1
                    hang.wait()
                    with receiver.lock:
                        receiver.hanging -= 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    if receiver.resets > 0:
                        receiver.resets -= 1
                        code = 0
                    else:
                        code = receiver.responses.pop(0) if receiver.responses else receiver.default
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, raw, code))
                if code == 0:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # no answer at all
                    return
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.redirect_to = "http://127.0.0.1:9/elsewhere"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def for_task(self, task_id: str) -> list[Received]:
        """Every request about ``task_id`` (retries included), in arrival order."""
        with self.lock:
            return [item for item in self.received if item.body.get("task_id") == task_id]

    def delivered(self, task_id: str) -> list[Received]:
        """The requests about ``task_id`` that were answered 2xx, de-duplicated by event id, in arrival order."""
        seen: set[str] = set()
        result = []
        for item in self.for_task(task_id):
            if 200 <= item.code < 300 and item.body["event_id"] not in seen:
                seen.add(item.body["event_id"])
                result.append(item)
        return result

    def close(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: str, headers: dict[str, str], body: bytes, max_age: int = 300) -> bool:
    """The receiver-side check documented in the README (kept identical to it)."""
    timestamp = headers["X-Runner-Timestamp"]
    message = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= max_age
    return fresh and hmac.compare_digest(expected, headers["X-Runner-Signature"])
