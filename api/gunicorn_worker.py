"""gunicorn's threaded worker, with the errors gunicorn answers itself (a malformed request line, a URI or
header block over its limits, a bad chunked body) sent as JSON like every other error of the API.

gunicorn writes those answers as HTML before the application sees the request. :meth:`handle_error` lets
gunicorn decide the status and log as usual, but hands it a stand-in socket that captures the HTML answer;
the status line is kept and the body rewritten as the API's ``{"error", "detail"}`` JSON.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

logger = logging.getLogger(__name__)

MAX_DETAIL_CHARS = 200


class _CapturingSocket:
    """Enough of a socket for gunicorn's ``util.write_error``: records what it would have sent."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


def json_error_response(html_response: bytes, exc: BaseException) -> bytes:
    """Rewrite gunicorn's HTML error response as a JSON one with the same status."""
    status_line = html_response.split(b"\r\n", 1)[0].decode("latin-1")
    _, code, reason = (status_line.split(" ", 2) + ["", ""])[:3]
    detail = str(exc) or reason
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS] + "..."
    body = json.dumps({"error": reason or "Bad Request", "detail": f"malformed HTTP request: {detail}"
                       if code.startswith("4") else "internal error in the runner; the details are in its log"})
    encoded = body.encode("utf-8")
    head = (f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(encoded)}\r\n\r\n")
    return head.encode("latin-1") + encoded


class JsonErrorThreadWorker(ThreadWorker):
    """The ``gthread`` worker answering gunicorn's own errors in JSON."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        capture = _CapturingSocket()
        super().handle_error(req, capture, addr, exc)
        if not capture.data:
            return
        try:
            client.setblocking(True)
            client.sendall(json_error_response(capture.data, exc))
        except OSError:
            logger.debug("could not send an error response: the client is gone")
