"""Status reads: ``GET /tasks/{id}`` requests per second with wrk (10 s, 16 connections) against a bare Falcon app
returning a constant on the same gunicorn settings. Needs ``wrk`` (Debian package)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, table, write_result  # noqa: E402
from service import Service  # noqa: E402

DURATION = "10s"


def wrk(url: str) -> dict[str, float]:
    output = subprocess.run(["wrk", "-t2", "-c16", f"-d{DURATION}", "--latency", url], capture_output=True,
                            text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"requests_per_second": rate, "p99_ms": float(p99.group(1)) * scale}


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data").start()
        try:
            requests.post(f"{service.base}/tasks", json={"task_id": "read-me", "run_id": "1", "prompt": "hello"},
                          timeout=10)
            while requests.get(f"{service.base}/tasks/read-me", timeout=10).json()["status"] != "success":
                time.sleep(0.05)
            runner = wrk(f"{service.base}/tasks/read-me")
        finally:
            service.stop()
        bare = Service(Path(scratch) / "bare")
        bare.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "--chdir", str(REPO),
             "--pythonpath", str(REPO / "bench"), "bare_app:create_app()"],
            cwd=REPO, env=bare.env, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(200):
                try:
                    requests.get(f"{bare.base}/tasks/x", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            baseline = wrk(f"{bare.base}/tasks/read-me")
        finally:
            bare.stop()
    ratio = runner["requests_per_second"] / baseline["requests_per_second"]
    table([
        ("bare Falcon constant", f"{baseline['requests_per_second']:.0f} req/s  p99 {baseline['p99_ms']:.1f} ms"),
        ("GET /tasks/{id}", f"{runner['requests_per_second']:.0f} req/s  p99 {runner['p99_ms']:.1f} ms"),
        ("ratio (target ≥ 50 %)", f"{ratio * 100:.0f} %"),
    ])
    write_result("status_reads", {"duration": DURATION, "connections": 16, "baseline": baseline, "runner": runner,
                                  "ratio": ratio})


if __name__ == "__main__":
    main()
