"""The errors gunicorn's worker answers itself, as the API's JSON (see api/gunicorn_worker.py): gunicorn writes
them as HTML; the worker captures that answer, keeps its status and sends ``{"error", "detail"}`` instead. Kept
apart from the worker's connection handling, which is about slow clients, not about what an error looks like.
"""

from __future__ import annotations

import json

MAX_DETAIL_CHARS = 200


class CapturingSocket:
    """Enough of a socket for gunicorn's ``util.write_error``: records what it would have sent."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


def json_error(code: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 error response with the API's JSON body, closing the connection."""
    encoded = json.dumps({"error": reason, "detail": detail}).encode("utf-8")
    head = (f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(encoded)}\r\n\r\n")
    return head.encode("latin-1") + encoded


def json_error_response(html_response: bytes, exc: BaseException) -> bytes:
    """Rewrite gunicorn's HTML error response as a JSON one with the same status."""
    status_line = html_response.split(b"\r\n", 1)[0].decode("latin-1")
    _, code, reason = (status_line.split(" ", 2) + ["", ""])[:3]
    detail = str(exc) or reason
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS] + "..."
    detail = (f"malformed HTTP request: {detail}" if code.startswith("4")
              else "internal error in the runner; the details are in its log")
    return json_error(int(code) if code.isdigit() else 500, reason or "Bad Request", detail)


def header_timeout_response(timeout: float) -> bytes:
    """The 408 a connection gets when its request line and headers did not arrive in time."""
    return json_error(408, "Request Timeout", f"the request line and headers did not arrive within {timeout:g} s")


__all__ = ["MAX_DETAIL_CHARS", "CapturingSocket", "header_timeout_response", "json_error", "json_error_response"]
