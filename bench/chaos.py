"""Chaos run: 50 tasks of mixed length while the service is killed with SIGKILL and restarted 5 times.

Every task's command appends its task id to a ledger when it starts and sleeps 0.2-4 s. At the end it prints
how many tasks were lost (unknown or not successful), stuck (still active), duplicated (started more than once),
and how many processes were left over; writes bench/results/chaos.json. Goal: 0, 0, 0, 0.
Run: ``.venv/bin/python bench/chaos.py [--tasks 50 --kills 5 --seed N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import REPO, Service  # noqa: E402

sys.path.insert(0, str(REPO))
from host_runner.run.stopping import group_members  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="host-runner-chaos-") as scratch:
        ledger = Path(scratch) / "ledger"
        ledger.touch()
        template = f"sh -c 'echo \"$HOST_RUNNER_TASK_ID\" >> {ledger}; sleep \"$HOST_RUNNER_PROMPT\"; echo done'"
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE=template,
                          HOST_RUNNER_MAX_CONCURRENCY="8").start()
        names = [f"chaos-{index}" for index in range(args.tasks)]
        submitted = 0
        kills_at = sorted(rng.sample(range(1, args.tasks), args.kills))
        started = time.monotonic()
        for index, name in enumerate(names):
            if kills_at and index == kills_at[0]:
                kills_at.pop(0)
                time.sleep(rng.uniform(0, 1.5))
                service.kill()
                service.start()
            body = {"task_id": name, "run_id": "1", "prompt": f"{rng.uniform(0.2, 4):.2f}"}
            for _attempt in range(50):  # a client retries a submit that hit a restart
                try:
                    requests.post(f"{service.base}/tasks", json=body, timeout=10)
                    submitted += 1
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            time.sleep(rng.uniform(0, 0.1))

        deadline = time.monotonic() + 180
        records: dict[str, dict] = {}
        while time.monotonic() < deadline:
            records = {name: requests.get(f"{service.base}/tasks/{name}", timeout=10).json() for name in names}
            if all(record.get("status") in ("success", "failed", "canceled") for record in records.values()):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        service.stop()

        starts = Counter(ledger.read_text().split())
        pgids = {record["pid"] for record in records.values() if record.get("pid")}
        leftovers = group_members(pgids)
        result = {
            "benchmark": "chaos", "seed": args.seed, "tasks": args.tasks, "kills": args.kills,
            "submitted": submitted,
            "lost": sum(1 for name in names if records.get(name, {}).get("status") not in
                        ("success", "queued", "running")),
            "stuck": sum(1 for name in names if records.get(name, {}).get("status") in ("queued", "running")),
            "duplicated": sum(1 for name in names if starts[name] > 1),
            "never_started": sum(1 for name in names if starts[name] == 0),
            "leftover_processes": len(leftovers),
            "statuses": dict(Counter(record.get("status", "missing") for record in records.values())),
            "seconds": round(elapsed, 1),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    for key in ("tasks", "kills", "lost", "stuck", "duplicated", "never_started", "leftover_processes", "seconds"):
        print(f"{key:<20}{result[key]:>10}")
    print(f"{'statuses':<20}{result['statuses']}")
    out = REPO / "bench" / "results" / "chaos.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"seed {args.seed}; written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
