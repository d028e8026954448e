"""Cancel latency: 200 running tasks (``sleep 600`` with a grandchild) canceled one by one: cancel request →
every process of the task's group gone, median and p99."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, summary_ms, table, write_result  # noqa: E402
from service import Service  # noqa: E402

sys.path.insert(0, str(REPO))
from host_runner.run.stopping import group_members  # noqa: E402

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def main() -> None:
    latencies = []
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell",
                          HOST_RUNNER_CMD_TEMPLATE="sh -c 'sleep 600 & sleep 600'",
                          HOST_RUNNER_MAX_CONCURRENCY=str(TASKS)).start()
        session = requests.Session()
        try:
            for index in range(TASKS):
                session.post(f"{service.base}/tasks", json={"task_id": f"c{index}", "run_id": "1", "prompt": "x"},
                             timeout=30)
            pgids = {}
            for index in range(TASKS):
                while True:  # running, with the sh and both sleeps in its group
                    record = session.get(f"{service.base}/tasks/c{index}", timeout=30).json()
                    if record["pid"] and len(group_members({record["pid"]})) >= 4:
                        pgids[index] = record["pid"]
                        break
                    time.sleep(0.02)
            for index in range(TASKS):
                started = time.perf_counter()
                session.post(f"{service.base}/tasks/c{index}/cancel", timeout=60)
                while group_members({pgids[index]}):
                    time.sleep(0.0005)
                latencies.append(time.perf_counter() - started)
        finally:
            service.stop()
    result = summary_ms(latencies)
    table([("tasks canceled", str(TASKS)),
           ("cancel → group gone", f"median {result['median_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
                                   "(target p99 ≤ 100 ms)")])
    write_result("cancel_latency", {"tasks": TASKS, "cancel_to_group_gone": result})


if __name__ == "__main__":
    main()
