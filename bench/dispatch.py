"""Dispatch latency: submit → process started and submit → terminal (callback receipt, no polling) for
tasks running ``true``, 500 sequential tasks, against ``subprocess.run(["true"])`` timed in the same script.

Twice: as deployed (task cgroups where the host offers them, HOST_RUNNER_CGROUPS=auto), then with
HOST_RUNNER_CGROUPS=off, to show what a cgroup per task adds to the latency of a short task on this host.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, parse_utc, summary_ms, table, write_result  # noqa: E402
from service import Service  # noqa: E402

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def baseline(count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(["true"], check=True)
        times.append(time.perf_counter() - started)
    return times


def through_runner(count: int, **env: str) -> tuple[list[float], list[float]]:
    """(submit → started, submit → terminal callback) of ``count`` sequential tasks, in seconds."""
    receiver = Receiver()
    to_start: list[float] = []
    to_end: list[float] = []
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE="true",
                          **env).start()
        session = requests.Session()
        try:
            for index in range(count):
                task_id = f"d{index}"
                sent = time.time()
                session.post(f"{service.base}/tasks", json={"task_id": task_id, "run_id": "1", "prompt": "x",
                                                            "status_callback_url": receiver.url}, timeout=10)
                arrived = receiver.wait_for(task_id, "success", timeout=30)
                assert arrived is not None, f"{task_id} did not finish"
                to_end.append(arrived - sent)
                record = session.get(f"{service.base}/tasks/{task_id}", timeout=10).json()
                to_start.append(parse_utc(record["started_at"]) - sent)
        finally:
            service.stop()
            receiver.close()
    return to_start, to_end


def main() -> None:
    floor = baseline(TASKS)
    to_start, to_end = through_runner(TASKS)
    _, to_end_without = through_runner(TASKS, HOST_RUNNER_CGROUPS="off")
    start, end, base = summary_ms(to_start), summary_ms(to_end), summary_ms(floor)
    without = summary_ms(to_end_without)
    table([
        ("tasks", str(TASKS)),
        ("baseline subprocess.run(['true'])", f"median {base['median_ms']:.2f} ms  p99 {base['p99_ms']:.2f} ms"),
        ("submit → started", f"median {start['median_ms']:.2f} ms  p99 {start['p99_ms']:.2f} ms  (target ≤ 5 ms)"),
        ("submit → terminal (callback)", f"median {end['median_ms']:.2f} ms  p99 {end['p99_ms']:.2f} ms  "
                                         f"(target ≤ 6 ms)"),
        ("same, HOST_RUNNER_CGROUPS=off", f"median {without['median_ms']:.2f} ms  p99 {without['p99_ms']:.2f} ms"),
        ("terminal / baseline (median)", f"{end['median_ms'] / base['median_ms']:.1f}x"),
    ])
    write_result("dispatch", {"tasks": TASKS, "baseline": base, "submit_to_started": start,
                              "submit_to_terminal": end, "submit_to_terminal_without_cgroups": without,
                              "ratio_terminal_vs_baseline": end["median_ms"] / base["median_ms"]})


if __name__ == "__main__":
    main()
