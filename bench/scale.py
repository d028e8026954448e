"""Scale: 5,000 concurrent ``sleep 600`` tasks (limit raised to match): time until all run, the worker's RSS and
thread count, ``GET /tasks/{id}`` p50/p99 while they run, then cancel all and time until no process is left.

    python bench/scale.py [TASKS]

Each task is two processes (its wrapper and ``sleep``) and the worker has a thread per running task, so 5,000 tasks
need about 15,000 pids: ``kernel.pid_max`` is raised when it is lower than that (root only).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, percentile, table, write_result  # noqa: E402
from service import Service, rss_kib, threads_of  # noqa: E402

sys.path.insert(0, str(REPO))
from host_runner.run.stopping import group_members  # noqa: E402

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
CLIENTS = 16


WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("HOST_RUNNER_BENCH_IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", "/tasks/" .. ids[math.random(#ids)]) end
"""


def wrk_reads(base: str, names: list[str], scratch: Path) -> dict[str, float] | None:
    """GET /tasks/{random id} with wrk (a C client: the Python client's own CPU competes with the runner on a
    2-core machine and inflates its figures): 10 s, 16 connections. None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    (scratch / "ids.txt").write_text("\n".join(names) + "\n")
    (scratch / "reads.lua").write_text(WRK_SCRIPT)
    output = subprocess.run(["wrk", "-t2", f"-c{CLIENTS}", "-d10", "--latency", "-s", str(scratch / "reads.lua"),
                             base], capture_output=True, text=True, check=True,
                            env=dict(os.environ, HOST_RUNNER_BENCH_IDS=str(scratch / "ids.txt"))).stdout
    if re.search(r"Non-2xx", output):
        raise RuntimeError(f"wrk saw errors:\n{output}")
    figures = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for label, key in (("50", "p50_ms"), ("99", "p99_ms")):
        found = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", output)
        figures[key] = float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return figures


def running_count(session: requests.Session, base: str) -> int:
    """How many runs are running, from /metrics (a list is capped at 1,000 records)."""
    text = session.get(f"{base}/metrics", timeout=60).text
    return sum(int(float(value)) for value in re.findall(r'^host_runner_tasks\{[^}]*status="running"[^}]*\} (\S+)$',
                                                           text, re.MULTILINE))


def raise_pid_max(needed: int) -> None:
    """Make room for ``needed`` pids (processes and threads) when the kernel's limit is lower and we may."""
    path = Path("/proc/sys/kernel/pid_max")
    try:
        if int(path.read_text()) < needed:
            path.write_text(str(needed))
    except OSError:
        pass  # not root: the run may fail to start tasks, which the figures then show


def main() -> None:
    raise_pid_max(4 * TASKS + 10000)
    local = threading.local()

    def session() -> requests.Session:
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
        return local.session

    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE="sleep 600",
                          HOST_RUNNER_MAX_CONCURRENCY=str(TASKS), HOST_RUNNER_KILL_GRACE_SECONDS="5").start()
        base = service.base
        names = [f"s{index}" for index in range(TASKS)]
        try:
            rss_idle, threads_idle = rss_kib(service.worker_pid), threads_of(service.worker_pid)
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda name: session().post(f"{base}/tasks", json={
                    "task_id": name, "run_id": "1", "prompt": "x"}, timeout=60), names))
            while running_count(session(), base) < TASKS:
                time.sleep(0.1)
            to_running = time.perf_counter() - started
            rss_busy, threads_busy = rss_kib(service.worker_pid), threads_of(service.worker_pid)

            def timed_get(name: str) -> float:
                begin = time.perf_counter()
                session().get(f"{base}/tasks/{name}", timeout=60).raise_for_status()
                return time.perf_counter() - begin

            with ThreadPoolExecutor(CLIENTS) as pool:
                reads = list(pool.map(timed_get, random.choices(names, k=2000)))
            wrk = wrk_reads(base, names, Path(scratch))
            pgids = {session().get(f"{base}/tasks/{name}", timeout=60).json()["pid"] for name in names}
            cancel_started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda name: session().post(f"{base}/tasks/{name}/cancel", timeout=120), names))
            while group_members(pgids):
                time.sleep(0.05)
            to_gone = time.perf_counter() - cancel_started
            left = len(group_members(pgids))
        finally:
            service.stop()
    table([
        ("concurrent tasks", str(TASKS)),
        ("submit → all running", f"{to_running:.1f} s"),
        ("worker RSS idle → busy", f"{rss_idle / 1024:.0f} → {rss_busy / 1024:.0f} MiB  (target ≤ 300 MB)"),
        ("worker threads idle → busy", f"{threads_idle} → {threads_busy}"),
        ("GET /tasks/{id} while running", f"p50 {percentile(reads, 0.5) * 1000:.1f} ms  "
                                          f"p99 {percentile(reads, 0.99) * 1000:.1f} ms  (target p99 ≤ 50 ms)"),
        ("same, wrk (C client), 10 s", "wrk not installed" if wrk is None else
         f"p50 {wrk['p50_ms']:.1f} ms  p99 {wrk['p99_ms']:.1f} ms  {wrk['requests_per_second']:.0f} req/s"),
        ("cancel all → no process left", f"{to_gone:.1f} s, {left} left"),
    ])
    write_result("scale", {
        "tasks": TASKS, "seconds_to_all_running": to_running, "rss_idle_mib": rss_idle / 1024,
        "rss_busy_mib": rss_busy / 1024, "threads_idle": threads_idle, "threads_busy": threads_busy,
        "get_p50_ms": percentile(reads, 0.5) * 1000, "get_p99_ms": percentile(reads, 0.99) * 1000,
        "seconds_cancel_all_to_gone": to_gone, "processes_left": left, "wrk_reads": wrk,
    })


if __name__ == "__main__":
    main()
