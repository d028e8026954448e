"""Callback delivery latency: 1,000 mock tasks (``HOST_RUNNER_MOCK_SECONDS=0``) on the real gunicorn service,
each with a callback URL on a local receiver. Latency is state change → receipt: the receiver's clock at arrival
minus the record's timestamp of that change (``started_at`` for ``running``, ``finished_at`` for the terminal
status), both wall clock on this machine.

Three runs: the receiver alone, then the same load while a second receiver hangs on every request (60 tasks
point at it), to show that it does not slow the first one down; both submit as fast as 4 clients can, so the
runner is saturated and the figures are mostly queueing. Then a paced run (300 tasks submitted at 50 per second
by one client, well below what the runner can do): the latency of a callback itself. Prints median, p90, p99
and max, and writes bench/results/callback_latency.json. Run: ``.venv/bin/python bench/callback_latency.py`` (or
``make bench``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, parse_utc, percentile  # noqa: E402
from service import REPO, service  # noqa: E402

TASKS = 1000
HANGING_TASKS = 60
SUBMITTERS = 4
PACED_TASKS = 300
PACED_PER_SECOND = 50


def summary(values: list[float]) -> dict[str, float]:
    return {"count": len(values), "median_ms": statistics.median(values) * 1000,
            "p90_ms": percentile(values, 0.90) * 1000, "p99_ms": percentile(values, 0.99) * 1000,
            "max_ms": max(values) * 1000}


def submit_all(base: str, tasks: list[tuple[str, str]]) -> None:
    session_for = threading.local()

    def submit(item: tuple[str, str]) -> None:
        session = getattr(session_for, "session", None) or requests.Session()
        session_for.session = session
        task_id, url = item
        response = session.post(f"{base}/tasks", json={"task_id": task_id, "run_id": "1", "prompt": "x",
                                                        "status_callback_url": url}, timeout=30)
        response.raise_for_status()

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(submit, tasks))


def submit_paced(base: str, tasks: list[tuple[str, str]]) -> None:
    """One client, one submission every 1/PACED_PER_SECOND s (on a fixed schedule, not after each answer)."""
    session = requests.Session()
    started = time.perf_counter()
    for index, (task_id, url) in enumerate(tasks):
        delay = started + index / PACED_PER_SECOND - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        session.post(f"{base}/tasks", json={"task_id": task_id, "run_id": "1", "prompt": "x",
                                            "status_callback_url": url}, timeout=30).raise_for_status()


def scenario(with_hanging: bool, paced: bool = False) -> dict[str, Any]:
    count = PACED_TASKS if paced else TASKS
    receiver = Receiver()
    hang = threading.Event()
    hanging = Receiver(hang) if with_hanging else None
    try:
        with service(HOST_RUNNER_MOCK_SECONDS="0", HOST_RUNNER_CALLBACK_TIMEOUT_SECONDS="30") as (base, _worker):
            tasks = [(f"cb-{index}", receiver.url) for index in range(count)]
            if hanging is not None:  # spread among the others, so the hanging lane is busy from the start
                for index in range(HANGING_TASKS):
                    tasks.insert(index * (TASKS // HANGING_TASKS), (f"hang-{index}", hanging.url))
            started = time.perf_counter()
            (submit_paced if paced else submit_all)(base, tasks)
            submitted = time.perf_counter() - started
            deadline = time.monotonic() + 300
            while receiver.count() < 2 * count and time.monotonic() < deadline:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            hanging_received = hanging.count() if hanging is not None else 0
            hang.set()  # let the service stop promptly
        with receiver.lock:
            arrivals = list(receiver.events.values())
    finally:
        hang.set()
        receiver.close()
        if hanging is not None:
            hanging.close()
    running = [at - parse_utc(body["started_at"]) for at, body in arrivals if body["status"] == "running"]
    ended = [at - parse_utc(body["finished_at"]) for at, body in arrivals if body["status"] != "running"]
    if len(arrivals) != 2 * count:
        raise SystemExit(f"only {len(arrivals)} of {2 * count} events arrived")
    return {"tasks": count, "events": len(arrivals), "paced_per_second": PACED_PER_SECOND if paced else None, "hanging_receiver_tasks": HANGING_TASKS if with_hanging else 0,
            "hanging_receiver_answered": hanging_received, "submit_seconds": submitted,
            "all_delivered_seconds": wall, "running": summary(running), "terminal": summary(ended),
            "all": summary(running + ended)}


def show(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}: {result['events']} events from {result['tasks']} tasks, all delivered "
          f"{result['all_delivered_seconds']:.1f}s after the first submit (submitting took "
          f"{result['submit_seconds']:.1f}s)")
    print(f"{'event':<10}{'median':>10}{'p90':>10}{'p99':>10}{'max':>10}   (ms, state change → receipt)")
    for kind in ("running", "terminal", "all"):
        figures = result[kind]
        print(f"{kind:<10}{figures['median_ms']:>10.1f}{figures['p90_ms']:>10.1f}{figures['p99_ms']:>10.1f}"
              f"{figures['max_ms']:>10.1f}")


def main() -> None:
    alone = scenario(with_hanging=False)
    show("one receiver", alone)
    beside = scenario(with_hanging=True)
    show(f"same, while another receiver hangs on {HANGING_TASKS} tasks' callbacks", beside)
    paced = scenario(with_hanging=False, paced=True)
    show(f"paced: {PACED_PER_SECOND} submissions per second, one receiver", paced)
    result = {"benchmark": "callback_latency", "one_receiver": alone, "beside_a_hanging_receiver": beside,
              "paced": paced,
              "machine": platform.platform(), "cpus": os.cpu_count(),
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = REPO / "bench" / "results" / "callback_latency.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
