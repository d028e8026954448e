"""Shared pieces of the benchmark scripts: a callback receiver, percentiles, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def serve_callbacks(answer: Callable[[dict[str, Any]], int]) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP server on 127.0.0.1, serving in its own thread, that answers each POSTed JSON body with the
    status ``answer(body)`` returns. Returns the server (shut it down and close it after use) and its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            status = answer(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/cb"


class Receiver:
    """An HTTP server on 127.0.0.1 noting when each callback arrived (time.time()): by (task_id, status) in
    ``arrivals`` and by event id, with its body, in ``events``. With ``hang``, it answers only once that is set."""

    def __init__(self, hang: threading.Event | None = None,
                 key: Callable[[dict[str, Any]], Any] | None = None) -> None:
        """``key`` names an arrival in ``arrivals`` (default: ``(task_id, status)``)."""
        arrival_key = key or (lambda body: (body["task_id"], body["status"]))
        self.arrivals: dict[Any, float] = {}
        self.events: dict[str, tuple[float, dict[str, Any]]] = {}
        self.terminal = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

        def answer(body: dict[str, Any]) -> int:
            now = time.time()
            if hang is not None:
                hang.wait()
            with self.changed:
                self.arrivals.setdefault(arrival_key(body), now)
                self.events.setdefault(body["event_id"], (now, body))
                if body["status"] in ("success", "failed", "canceled"):
                    self.terminal += 1
                self.changed.notify_all()
            return 204

        self.server, self.url = serve_callbacks(answer)

    def wait_arrival(self, key: Any, timeout: float) -> float:
        """When the callback named ``key`` arrived (time.time()); RuntimeError if not within ``timeout``."""
        with self.changed:
            if not self.changed.wait_for(lambda: key in self.arrivals, timeout):
                raise RuntimeError(f"no callback {key!r} within {timeout}s")
            return self.arrivals[key]

    def count(self) -> int:
        with self.lock:
            return len(self.events)

    def wait_terminal(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.terminal >= count, timeout)

    def wait_for(self, task_id: str, status: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: (task_id, status) in self.arrivals, timeout)
            return self.arrivals.get((task_id, status))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_utc(stamp: str) -> float:
    return datetime.strptime(stamp.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(values) * 1000, "p99_ms": percentile(values, 0.99) * 1000,
            "n": len(values)}


def write_result(name: str, result: dict[str, Any]) -> Path:
    result = {"benchmark": name, **result, "machine": platform.platform(), "cpus": os.cpu_count(),
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")
    return out


def table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows) + 2
    for name, value in rows:
        print(f"{name:<{width}}{value}")
