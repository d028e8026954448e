"""docker-sandbox overhead: what the runner adds around a container, on the real engine and real gunicorn.

Measures, for a container running ``true`` in the local busybox test image:
- ``docker run --rm`` with the same hardening flags, run directly (the floor);
- through the runner: submit → ``running`` (``docker create`` + attached start), submit → terminal (including
  inspect and removal of the container), one at a time;
- cancel of a running container: the cancel request's answer (canceled, container removed);
- 8 containers submitted at once: submit → all terminal.
Prints medians and writes bench/results/sandbox_overhead.json. Needs a Docker engine (bash .ci/start-docker).
Run: ``.venv/bin/python bench/sandbox_overhead.py``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.docker import ensure_busybox_image  # noqa: E402
from service import REPO, service  # noqa: E402

ROUNDS = 10
CONCURRENT = 8
HARDENING = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
             "--network", "none", "--pids-limit", "256", "--memory", "2g", "--cpus", "2", "--init"]


def direct(image: str) -> list[float]:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", *HARDENING, "--", image, "true"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def submit(base: str, task_id: str, image: str, *command: str) -> None:
    body = {"task_id": task_id, "run_id": "1", "prompt": "bench", "execution_mode": "docker-sandbox",
            "sandbox": {"image": image, "command": list(command)}}
    answer = requests.post(f"{base}/tasks", json=body, timeout=30)
    answer.raise_for_status()


def status(base: str, task_id: str) -> dict:
    return requests.get(f"{base}/tasks/{task_id}", timeout=30).json()


def through_runner(base: str, image: str) -> tuple[list[float], list[float]]:
    to_running, to_end = [], []
    for index in range(ROUNDS):
        task_id = f"seq-{index}"
        started = time.perf_counter()
        submit(base, task_id, image, "true")
        running_at = None
        while True:
            record = status(base, task_id)
            if record["status"] != "queued" and running_at is None:
                running_at = time.perf_counter()
            if record["status"] not in ("queued", "running"):
                break
            time.sleep(0.005)
        assert record["status"] == "success", record
        to_running.append((running_at or time.perf_counter()) - started)
        to_end.append(time.perf_counter() - started)
    return to_running, to_end


def cancels(base: str, image: str) -> list[float]:
    times = []
    for index in range(ROUNDS // 2):
        task_id = f"cancel-{index}"
        submit(base, task_id, image, "sleep", "1000")
        while status(base, task_id)["status"] != "running":
            time.sleep(0.01)
        started = time.perf_counter()
        record = requests.post(f"{base}/tasks/{task_id}/cancel", timeout=60).json()
        times.append(time.perf_counter() - started)
        assert record["status"] == "canceled", record
        left = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"id={record['container_id']}"],
                              capture_output=True, text=True, check=True).stdout.split()
        assert not left, left
    return times


def concurrent(base: str, image: str) -> float:
    started = time.perf_counter()
    for index in range(CONCURRENT):
        submit(base, f"par-{index}", image, "true")
    pending = {f"par-{index}" for index in range(CONCURRENT)}
    while pending:
        pending = {task_id for task_id in pending if status(base, task_id)["status"] in ("queued", "running")}
        time.sleep(0.01)
    return time.perf_counter() - started


def main() -> None:
    image = ensure_busybox_image()
    floor = direct(image)
    with service() as (base, _worker):
        to_running, to_end = through_runner(base, image)
        cancel = cancels(base, image)
        parallel = concurrent(base, image)
    median = statistics.median
    result = {
        "benchmark": "sandbox_overhead", "rounds": ROUNDS,
        "docker_run_rm_median_seconds": median(floor),
        "submit_to_running_median_seconds": median(to_running),
        "submit_to_terminal_median_seconds": median(to_end),
        "cancel_request_median_seconds": median(cancel),
        f"{CONCURRENT}_concurrent_submit_to_all_terminal_seconds": parallel,
        "machine": platform.platform(), "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = [
        ("docker run --rm (direct, median)", median(floor)),
        ("runner: submit → running (median)", median(to_running)),
        ("runner: submit → success (median)", median(to_end)),
        ("runner: cancel request (median)", median(cancel)),
        (f"runner: {CONCURRENT} at once → all done", parallel),
    ]
    print(f"{'what':<40}{'seconds':>10}")
    for name, value in rows:
        print(f"{name:<40}{value:>10.3f}")
    out = REPO / "bench" / "results" / "sandbox_overhead.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
