"""Event stream latency beside callback latency: 300 mock tasks (``HOST_RUNNER_MOCK_SECONDS=0``), submitted at a
paced 50 per second to the real gunicorn service, each with a callback URL on a local receiver, while 1, then 50,
clients read ``GET /events`` as Server-Sent Events. Latency is state change → receipt: the reader's (or the
receiver's) clock at arrival minus the record's timestamp of that change (``started_at`` for ``running``,
``finished_at`` for the terminal status), both wall clock on this machine; the callback figures are the baseline
measured in the same run.

Run: ``.venv/bin/python bench/event_latency.py`` (or ``make bench``); writes bench/results/event_latency.json.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, parse_utc, summary_ms, write_result  # noqa: E402
from service import service  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from host_runner.client.events import parse_stream  # noqa: E402

TASKS = 300
PER_SECOND = 50.0


class Reader(threading.Thread):
    """One SSE client: the arrival time of each status event, by (task_id, status)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.response = requests.get(f"{base}/events", headers={"Accept": "text/event-stream"}, stream=True,
                                     timeout=(5, 120))
        self.response.raise_for_status()
        self.arrivals: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.start()

    def run(self) -> None:
        try:
            for event in parse_stream(self.response.iter_lines(decode_unicode=True)):
                if event.event == "status":
                    self.arrivals[(event.data["task_id"], event.data["status"])] = (time.time(), event.data)
        except (requests.RequestException, AttributeError):
            pass  # closed at the end

    def terminal(self) -> int:
        return sum(1 for (_, status) in self.arrivals if status == "success")


def latencies(arrivals: list[tuple[float, dict[str, Any]]]) -> list[float]:
    out = []
    for at, body in arrivals:
        if body["status"] == "running":
            out.append(at - parse_utc(body["started_at"]))
        elif body["status"] == "success":
            out.append(at - parse_utc(body["finished_at"]))
    return out


def scenario(streams: int) -> dict[str, Any]:
    receiver = Receiver()
    try:
        with service(HOST_RUNNER_MOCK_SECONDS="0", HOST_RUNNER_MAX_LOG_FOLLOWERS=str(streams + 2),
                     HOST_RUNNER_THREADS=str(streams + 16)) as (base, _worker):
            readers = [Reader(base) for _ in range(streams)]
            session = requests.Session()
            started = time.monotonic()
            for index in range(TASKS):
                time.sleep(max(0.0, started + index / PER_SECOND - time.monotonic()))
                session.post(f"{base}/tasks/submit", json={"task_id": f"ev-{index}", "run_id": "1", "prompt": "x",
                                                           "status_callback_url": receiver.url},
                             timeout=30).raise_for_status()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (receiver.terminal < TASKS
                                                   or any(r.terminal() < TASKS for r in readers)):
                time.sleep(0.05)
            for reader in readers:
                reader.response.close()
        with receiver.lock:
            delivered = list(receiver.events.values())
    finally:
        receiver.close()
    streamed = [value for reader in readers for value in latencies(list(reader.arrivals.values()))]
    return {"streams": streams, "tasks": TASKS, "per_second": PER_SECOND,
            "stream": summary_ms(streamed), "callback": summary_ms(latencies(delivered))}


def main() -> None:
    results = [scenario(1), scenario(50)]
    print(f"\n{TASKS} tasks at {PER_SECOND:g}/s; state change → receipt, ms")
    print(f"{'streams':>8}{'SSE median':>12}{'SSE p99':>10}{'callback median':>17}{'callback p99':>14}")
    for result in results:
        stream, callback = result["stream"], result["callback"]
        print(f"{result['streams']:>8}{stream['median_ms']:>12.1f}{stream['p99_ms']:>10.1f}"
              f"{callback['median_ms']:>17.1f}{callback['p99_ms']:>14.1f}")
    write_result("event_latency", {"scenarios": results})


if __name__ == "__main__":
    main()
