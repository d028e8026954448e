"""Where the runner's CPU goes for short tasks: N ``true`` tasks through the real service (16 clients, limit 16),
with the worker's CPU time per task (user and system, from /proc) and, with ``--py-spy``, a py-spy profile of the
worker (only threads holding the GIL) summarised as the functions with the most samples.

    python bench/profile_tasks.py [N] [--py-spy] [--wrapper auto|native|python]

py-spy is not in requirements.txt (it is a profiler, not a dependency): ``pip install py-spy`` first.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Receiver, table, write_result  # noqa: E402
from service import Service  # noqa: E402

CLIENTS = 16
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process itself (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def summarise(raw: Path, top: int) -> list[tuple[str, str, str]]:
    """py-spy's raw (collapsed stacks) output → the functions with the most samples, inclusive and own."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    rows = [(f"{count / total * 100:.1f} %", f"{own[frame] / total * 100:.1f} %", frame[:110])
            for frame, count in inclusive.most_common(top + 8)
            if not frame.startswith(("Thread.", "<module>"))]  # thread bootstrap frames are in every stack
    return rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="?", type=int, default=1000)
    parser.add_argument("--py-spy", action="store_true", help="profile the worker with py-spy (GIL holders only)")
    parser.add_argument("--wrapper", default="auto", choices=("auto", "native", "python"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw (collapsed stacks) output in this file")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.py_spy and not Path(py_spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")

    receiver = Receiver()
    local = threading.local()
    with tempfile.TemporaryDirectory(prefix="host-runner-profile-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE="true",
                          HOST_RUNNER_MAX_CONCURRENCY=str(CLIENTS), HOST_RUNNER_WRAPPER=args.wrapper).start()

        def submit(index: int) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            response = session.post(f"{service.base}/tasks", json={
                "task_id": f"p{index}", "run_id": "1", "prompt": "x", "status_callback_url": receiver.url}, timeout=30)
            assert response.status_code == 202, response.text

        raw = args.raw or Path(scratch) / "profile.txt"
        profiler = None
        try:
            worker = service.worker_pid
            if args.py_spy:
                profiler = subprocess.Popen([py_spy, "record", "--pid", str(worker), "--output", str(raw),
                                             "--format", "raw", "--rate", "250", "--gil"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)  # let it attach
            user0, system0 = cpu_seconds(worker)
            client0 = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(submit, range(args.tasks)))
            assert receiver.wait_terminal(args.tasks, timeout=600), "not every task finished"
            elapsed = time.perf_counter() - started
            user1, system1 = cpu_seconds(worker)
            client1 = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
            service.stop()
            receiver.close()
        per_task = 1000 / args.tasks
        table([
            ("tasks", str(args.tasks)),
            ("wrapper", args.wrapper),
            ("tasks per second", f"{args.tasks / elapsed:.0f}"),
            ("worker CPU per task: user", f"{(user1 - user0) * per_task:.2f} ms"),
            ("worker CPU per task: system", f"{(system1 - system0) * per_task:.2f} ms"),
            ("this client + receiver CPU per task", f"{(client1.ru_utime + client1.ru_stime - client0.ru_utime - client0.ru_stime) * per_task:.2f} ms"),
        ])
        profile = summarise(raw, args.top) if profiler is not None and raw.exists() else []
        if profile:
            print("\nworker, threads holding the GIL (inclusive, own, function):")
            for inclusive, own, frame in profile:
                print(f"{inclusive:>8} {own:>8}  {frame}")
        write_result("profile_tasks", {
            "tasks": args.tasks, "wrapper": args.wrapper, "tasks_per_second": args.tasks / elapsed,
            "worker_user_ms_per_task": (user1 - user0) * per_task, "worker_system_ms_per_task": (system1 - system0) * per_task,
            "worker_cpu_ms_per_task": (user1 - user0 + system1 - system0) * per_task,
            "cgroups": os.environ.get("HOST_RUNNER_CGROUPS", "auto"),
            "profile": [{"inclusive": inclusive, "own": own, "function": frame} for inclusive, own, frame in profile],
        })


if __name__ == "__main__":
    main()
