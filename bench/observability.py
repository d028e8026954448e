"""What looking inside costs: latency of the debug/metrics endpoints with many running tasks, the CPU an idle
log follower costs the worker, and how fast a followed log streams.

Prints the figures and writes bench/results/observability.json. Run: ``.venv/bin/python bench/observability.py``
(or ``make bench``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from service import service  # noqa: E402

RUNNING = 50
SAMPLES = 40
FOLLOWERS = 8
IDLE_SECONDS = 10.0
STREAM_BYTES = 256 * 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def latency_ms(url: str) -> dict[str, float]:
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = requests.get(url, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        assert response.ok, response.text
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1], "max_ms": times[-1]}


def wait_running(base: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = requests.get(f"{base}/tasks", params={"status": "running", "limit": 1000}, timeout=10).json()
        if running["count"] >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} tasks did not start")


def endpoints_and_followers() -> dict[str, object]:
    env = {"HOST_RUNNER_EXECUTOR": "shell", "HOST_RUNNER_CMD_TEMPLATE": "sleep 600",
           "HOST_RUNNER_MAX_CONCURRENCY": str(RUNNING + 10), "HOST_RUNNER_SHUTDOWN": "cancel",
           "HOST_RUNNER_KILL_GRACE_SECONDS": "1", "HOST_RUNNER_MAX_LOG_FOLLOWERS": str(FOLLOWERS)}
    with service(**env) as (base, worker):
        for index in range(RUNNING):
            requests.post(f"{base}/tasks", json={"task_id": f"t{index}", "run_id": "r", "prompt": "p"}, timeout=30)
        wait_running(base, RUNNING)
        result: dict[str, object] = {
            endpoint: latency_ms(f"{base}{endpoint}")
            for endpoint in ("/tasks/t0", "/debug/actors", "/metrics", "/debug/threads")
        }
        idle_before = cpu_seconds(worker)
        time.sleep(IDLE_SECONDS)
        idle = cpu_seconds(worker) - idle_before
        responses = [requests.get(f"{base}/tasks/t{index}/logs", params={"follow": "true"}, stream=True, timeout=60)
                     for index in range(FOLLOWERS)]
        time.sleep(1)
        followed_before = cpu_seconds(worker)
        time.sleep(IDLE_SECONDS)
        followed = cpu_seconds(worker) - followed_before
        for response in responses:
            response.close()
        result["worker_cpu_percent_no_followers"] = 100 * idle / IDLE_SECONDS
        result[f"worker_cpu_percent_{FOLLOWERS}_idle_followers"] = 100 * followed / IDLE_SECONDS
        result["cpu_percent_per_idle_follower"] = 100 * (followed - idle) / IDLE_SECONDS / FOLLOWERS
        return result


def follow_throughput() -> dict[str, float]:
    env = {"HOST_RUNNER_EXECUTOR": "shell", "HOST_RUNNER_CMD_TEMPLATE": f"head -c {STREAM_BYTES} /dev/zero"}
    with service(**env) as (base, _worker):
        started = time.perf_counter()
        requests.post(f"{base}/tasks", json={"task_id": "big", "run_id": "r", "prompt": "p"}, timeout=30)
        received = 0
        with requests.get(f"{base}/tasks/big/logs", params={"follow": "true"}, stream=True, timeout=120) as response:
            for chunk in response.iter_content(chunk_size=None):
                received += len(chunk)
        wall = time.perf_counter() - started
        assert received == STREAM_BYTES, received
        return {"follow_bytes": received, "follow_seconds": wall, "follow_mib_per_second": received / wall / 2**20}


def main() -> None:
    figures = endpoints_and_followers()
    figures.update(follow_throughput())
    print(f"with {RUNNING} running tasks, {SAMPLES} sequential requests each:")
    print(f"{'endpoint':<22}{'median':>10}{'p95':>10}{'max':>10}")
    for endpoint in ("/tasks/t0", "/debug/actors", "/metrics", "/debug/threads"):
        row = figures[endpoint]
        assert isinstance(row, dict)
        print(f"{endpoint:<22}{row['median_ms']:>8.1f}ms{row['p95_ms']:>8.1f}ms{row['max_ms']:>8.1f}ms")
    print(f"worker CPU, no followers:           {figures['worker_cpu_percent_no_followers']:6.2f} %")
    print(f"worker CPU, {FOLLOWERS} idle followers:        "
          f"{figures[f'worker_cpu_percent_{FOLLOWERS}_idle_followers']:6.2f} %")
    print(f"per idle follower:                  {figures['cpu_percent_per_idle_follower']:6.2f} % of a core")
    print(f"following a {STREAM_BYTES >> 20} MiB run (submit→last byte): {figures['follow_seconds']:.2f} s, "
          f"{figures['follow_mib_per_second']:.0f} MiB/s")
    write_result("observability", {"running_tasks": RUNNING, "samples": SAMPLES, **figures})


if __name__ == "__main__":
    main()
