"""Throughput: 2,000 tasks running ``true`` submitted by 16 client threads with a concurrency limit of 16,
tasks per second until all are terminal (callback receipts), against a 16-thread pool running ``true`` directly."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, table, write_result  # noqa: E402
from service import Service  # noqa: E402

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
THREADS = 16


def baseline() -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda _: subprocess.run(["true"], check=True), range(TASKS)))
    return TASKS / (time.perf_counter() - started)


def through_runner() -> float:
    receiver = Receiver()
    local = threading.local()
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE="true",
                          HOST_RUNNER_MAX_CONCURRENCY=str(THREADS)).start()

        def submit(index: int) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            response = session.post(f"{service.base}/tasks", json={
                "task_id": f"tp{index}", "run_id": "1", "prompt": "x", "status_callback_url": receiver.url},
                timeout=30)
            assert response.status_code == 202, response.text

        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(submit, range(TASKS)))
            assert receiver.wait_terminal(TASKS, timeout=600), f"only {receiver.terminal} of {TASKS} finished"
            elapsed = time.perf_counter() - started
        finally:
            service.stop()
            receiver.close()
    return TASKS / elapsed


def main() -> None:
    direct = baseline()
    runner = through_runner()
    table([
        ("tasks", str(TASKS)),
        ("baseline: 16-thread pool running true", f"{direct:.0f} tasks/s"),
        ("through the runner (16 clients, limit 16)", f"{runner:.0f} tasks/s"),
        ("ratio (target ≥ 15 %)", f"{runner / direct * 100:.1f} %"),
    ])
    write_result("throughput", {"tasks": TASKS, "threads": THREADS, "baseline_tasks_per_second": direct,
                                "runner_tasks_per_second": runner, "ratio": runner / direct})


if __name__ == "__main__":
    main()
