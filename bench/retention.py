"""Retention soak: shell tasks (each writing ~20 KiB of output, each with a callback) submitted at a steady rate
against the real gunicorn service with a short ``HOST_RUNNER_RETENTION_SECONDS``; every ``--every`` seconds it
samples the data directory's size on disk, the rows in the store (runs, callback events), the run directories
and ``host_runner_pruned_runs_total``. With retention working, size and counts level off after the first
``--retention-seconds`` and stay flat while the submitted total keeps growing. Writes bench/results/retention.json.

Run: ``.venv/bin/python bench/retention.py [--minutes 3 --rate 20 --retention-seconds 10]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, table, write_result  # noqa: E402
from service import Service  # noqa: E402

SCRIPT = "sh -c 'echo $HOST_RUNNER_PROMPT; head -c 20000 /dev/zero | tr \"\\0\" x'"


def disk_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass  # removed while walking
    return total


def counts(data_dir: Path) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{data_dir / 'host_runner.db'}?mode=ro", uri=True, timeout=10)
    try:
        return (db.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM callback_events").fetchone()[0])
    finally:
        db.close()


def pruned(base: str) -> float:
    for line in requests.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("host_runner_pruned_runs_total "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0, help="tasks submitted per second")
    parser.add_argument("--retention-seconds", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    args = parser.parse_args()
    samples = []
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        data = Path(scratch) / "data"
        service = Service(data, HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE=SCRIPT,
                          HOST_RUNNER_RETENTION_SECONDS=str(args.retention_seconds)).start()
        session = requests.Session()
        started = time.monotonic()
        next_sample, submitted = started + args.every, 0
        try:
            while time.monotonic() - started < args.minutes * 60:
                due = started + submitted / args.rate
                time.sleep(max(0.0, due - time.monotonic()))
                answer = session.post(f"{service.base}/tasks", timeout=30, json={
                    "task_id": f"r{submitted:06d}", "run_id": "1", "prompt": f"task {submitted}",
                    "status_callback_url": receiver.url})
                assert answer.status_code == 202, answer.text
                submitted += 1
                if time.monotonic() >= next_sample:
                    next_sample += args.every
                    runs, events = counts(data)
                    samples.append({"t": round(time.monotonic() - started), "submitted": submitted,
                                    "data_dir_mib": round(disk_bytes(data) / 2**20, 2), "runs": runs,
                                    "callback_events": events, "run_dirs": len(os.listdir(data / "runs")),
                                    "pruned_runs_total": pruned(service.base)})
                    print(samples[-1], flush=True)
        finally:
            service.stop()
            receiver.close()
    table([(f"t={s['t']}s", f"submitted {s['submitted']:>5}  data dir {s['data_dir_mib']:>6.2f} MiB  "
                            f"runs {s['runs']:>4}  events {s['callback_events']:>5}  run dirs {s['run_dirs']:>4}  "
                            f"pruned {s['pruned_runs_total']:>6.0f}") for s in samples])
    write_result("retention", {"minutes": args.minutes, "rate": args.rate,
                               "retention_seconds": args.retention_seconds, "samples": samples})


if __name__ == "__main__":
    main()
