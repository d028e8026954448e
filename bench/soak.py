"""Soak: thousands of mixed tasks against the real gunicorn service, with random cancels and a flaky receiver.

Tasks are submitted at a steady rate (default 10,000 at 20/s, about 8 minutes of submissions) with a mix of
executors and modes: mock, shell (no-workspace and shared-workspace), agent (tests/bin/fake-agent-runner),
isolated-worktree on a temporary repository, and a few docker-sandbox runs (the busybox test image). A random
5 % are cancelled 0-0.5 s after their submission. Every task has a callback URL whose receiver answers 500
to 10 % of the requests (retried by the runner). Shell-based commands append their task id to a ledger when they
start, so a task started twice shows.

At the end it checks: every task terminal (lost = accepted but unknown or never ended, stuck = still active),
callbacks delivered exactly once per event and in sequence order per run, nothing left (processes under the
worker, containers of the runner's instance, worktrees of the repository), and prints the worker's RSS, thread
count and open file descriptors over time (the curve), at the start and at the end. Writes
bench/results/<name>.json (default soak.json).

Run: ``.venv/bin/python bench/soak.py [--tasks 10000 --rate 20 --seed N]``; a short try: ``--tasks 1000``.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentile, serve_callbacks, table, write_result  # noqa: E402
from service import REPO, Service, rss_kib, threads_of  # noqa: E402

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from host_runner.sandbox.docker_cli import LABEL_INSTANCE  # noqa: E402

TERMINAL = ("success", "failed", "canceled")
FAKE_AGENT = REPO / "tests" / "bin" / "fake-agent-runner"


# --- the flaky receiver ------------------------------------------------------------------------------------------
@dataclass
class RunLog:
    """What the receiver saw of one run: sequences answered 2xx, in arrival order, and ordering problems."""

    delivered: list[int] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    out_of_order: int = 0
    failed_answers: int = 0


class FlakyReceiver:
    """Answers 500 to ``fail_fraction`` of the callback requests (at random), 204 to the others, and checks each
    run's order on arrival: event n+1 must not arrive before event n was answered 2xx."""

    def __init__(self, fail_fraction: float, seed: int) -> None:
        self.runs: dict[tuple[str, str], RunLog] = defaultdict(RunLog)
        self.requests = 0
        self.lock = threading.Lock()
        rng = random.Random(seed)

        def answer(body: dict[str, Any]) -> int:
            with self.lock:
                self.requests += 1
                if rng.random() < fail_fraction:
                    self.runs[(body["task_id"], body["run_id"])].failed_answers += 1
                    return 500
                log = self.runs[(body["task_id"], body["run_id"])]
                if body["event_id"] in log.event_ids:
                    log.duplicates += 1
                else:
                    if int(body["sequence"]) != (log.delivered[-1] if log.delivered else 0) + 1:
                        log.out_of_order += 1
                    log.delivered.append(int(body["sequence"]))
                    log.event_ids.add(body["event_id"])
            return 204

        self.server, self.url = serve_callbacks(answer)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- sampling the worker -----------------------------------------------------------------------------------------
def fds_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children[int(fields[1])].append(int(entry))
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, ()))
    return found


def sample(pid: int, started: float, submitted: int) -> dict[str, float]:
    return {"t": round(time.monotonic() - started, 1), "rss_mib": round(rss_kib(pid) / 1024, 1),
            "threads": threads_of(pid), "fds": fds_of(pid), "children": len(descendants(pid)),
            "submitted": submitted}


class Sampler(threading.Thread):
    def __init__(self, pid: int, started: float, every: float, progress: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pid, self.started, self.every, self.progress = pid, started, every, progress
        self.samples: list[dict[str, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.samples.append(sample(self.pid, self.started, self.progress["submitted"]))
            except OSError:
                return


# --- the task mix --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    task_id: str
    kind: str
    body: dict[str, Any]
    cancel_after: float | None


def git(*args: str) -> None:
    subprocess.run(["git", "-c", "user.name=soak", "-c", "user.email=soak@localhost", *args], check=True,
                   capture_output=True)


def plans(args: argparse.Namespace, rng: random.Random, scratch: Path, callback_url: str,
          image: str | None, count: int, prefix: str = "soak") -> list[Plan]:
    weights = {"mock": 0.35, "shell": 0.25, "shared-workspace": 0.10, "agent": 0.15, "isolated-worktree": 0.15}
    kinds, shares = list(weights), list(weights.values())
    result = []
    for index in range(count):
        task_id = f"{prefix}-{index:05d}"
        kind = rng.choices(kinds, shares)[0]
        if image is not None and rng.random() < args.docker_fraction:
            kind = "docker-sandbox"
        seconds = f"{rng.uniform(0.05, 0.6):.2f}"
        body: dict[str, Any] = {"task_id": task_id, "run_id": "r1", "status_callback_url": callback_url,
                                "status_callback_token": "soak-token", "timeout_seconds": 120,
                                "prompt": f"{seconds} soak task {index}", "executor": "shell"}
        if kind == "mock":
            body["executor"] = "mock"
        elif kind == "shared-workspace":
            body["execution_mode"] = "shared-workspace"
            body["workspace"] = {"project_root": str(scratch / "project"), "project_id": "soak",
                                 "lock_paths": [str(scratch / "project" / "locks" / task_id)]}
        elif kind == "agent":
            body.update(executor="agent", group=f"group-{index % 12}", prompt=f"frames:{rng.randint(1, 3)}")
        elif kind == "isolated-worktree":
            body["execution_mode"] = "isolated-worktree"
            body["workspace"] = {"project_root": str(scratch / "repo"), "worktree_path": str(scratch / "wt" / task_id),
                                 "git_branch": f"soak/{task_id}"}
        elif kind == "docker-sandbox":
            del body["executor"]
            body["execution_mode"] = "docker-sandbox"
            body["sandbox"] = {"image": image, "command": ["sh", "-c", f"echo in a box; sleep {seconds}"]}
        cancel_after = rng.uniform(0.0, 0.5) if rng.random() < args.cancel_fraction else None
        result.append(Plan(task_id, kind, body, cancel_after))
    return result


def docker_image() -> str | None:
    try:
        from support.docker import docker_available, ensure_busybox_image
    except ImportError:
        return None
    return ensure_busybox_image() if docker_available() else None


# --- the run -------------------------------------------------------------------------------------------------------
def metric(base: str, name: str) -> float | None:
    text = requests.get(f"{base}/metrics", timeout=30).text
    match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def active_count(base: str) -> int:
    return sum(requests.get(f"{base}/tasks", params={"status": status, "limit": 1000}, timeout=30).json()["count"]
               for status in ("queued", "running"))


def settle(base: str, deadline: float) -> None:
    """Wait until every task ended, then until every callback is settled (or the deadline passed)."""
    while active_count(base) and time.monotonic() < deadline:
        time.sleep(1)
    while (metric(base, "host_runner_callback_pending") or 0) > 0 and time.monotonic() < deadline:
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    parser.add_argument("--cancel-fraction", type=float, default=0.05)
    parser.add_argument("--callback-fail-fraction", type=float, default=0.10)
    parser.add_argument("--docker-fraction", type=float, default=0.005, help="share of docker-sandbox tasks")
    parser.add_argument("--warmup", type=int, default=60, help="tasks run (and settled) before the start sample")
    parser.add_argument("--max-concurrency", type=int, default=16)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--report-seconds", type=float, default=60.0, help="one line of the curve per this")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--name", default="soak", help="the result file's name (bench/results/NAME.json)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    image = docker_image() if args.docker_fraction > 0 else None

    with tempfile.TemporaryDirectory(prefix="host-runner-soak-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "project" / "locks").mkdir(parents=True)
        (scratch / "wt").mkdir()
        repo = scratch / "repo"
        git("init", "-q", "-b", "main", str(repo))
        (repo / "README").write_text("soak\n")
        git("-C", str(repo), "add", "README")
        git("-C", str(repo), "commit", "-q", "-m", "base")
        ledger = scratch / "ledger"
        ledger.touch()
        instance = f"soak-{os.getpid()}"
        template = f"sh -c 'echo \"$HOST_RUNNER_TASK_ID\" >> {ledger}; sleep \"${{HOST_RUNNER_PROMPT%% *}}\"; echo done'"
        receiver = FlakyReceiver(args.callback_fail_fraction, args.seed)
        service = Service(scratch / "data", HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE=template,
                          HOST_RUNNER_ALLOWED_EXECUTORS="shell,mock,agent",
                          HOST_RUNNER_AGENT_CMD=str(FAKE_AGENT), HOST_RUNNER_MAX_CONCURRENCY=str(args.max_concurrency),
                          HOST_RUNNER_INSTANCE_ID=instance, HOST_RUNNER_KILL_GRACE_SECONDS="2",
                          HOST_RUNNER_CALLBACK_BACKOFF_SECONDS="0.1", HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS="2").start()
        try:
            result = soak(args, rng, scratch, service, receiver, image, ledger, instance)
        finally:
            service.stop()
            receiver.close()
        write_result(args.name, result)
        shutil.rmtree(scratch, ignore_errors=True)


def soak(args: argparse.Namespace, rng: random.Random, scratch: Path, service: Service, receiver: FlakyReceiver,
         image: str | None, ledger: Path, instance: str) -> dict[str, Any]:
    base, worker = service.base, service.worker_pid
    cold = sample(worker, time.monotonic(), 0)
    # Warm up first (thread pools, imports, caches fill on first use): the start sample is of a warm, idle worker.
    for plan in plans(args, rng, scratch, receiver.url, image, args.warmup, prefix="warmup"):
        requests.post(f"{base}/tasks", json=plan.body, timeout=60)
    settle(base, time.monotonic() + args.drain_timeout)
    time.sleep(15)
    planned = plans(args, rng, scratch, receiver.url, image, args.tasks)
    kinds = Counter(plan.kind for plan in planned)
    print(f"soak: {args.tasks} tasks at {args.rate}/s, seed {args.seed}; mix {dict(kinds)}; "
          f"{sum(plan.cancel_after is not None for plan in planned)} cancels; worker pid {worker}", flush=True)
    started = time.monotonic()
    progress = {"submitted": 0}
    baseline = sample(worker, started, 0)
    print(f"worker cold: RSS {cold['rss_mib']} MiB, {cold['threads']} threads, {cold['fds']} fds; after "
          f"{args.warmup} warm-up tasks, idle: RSS {baseline['rss_mib']} MiB, {baseline['threads']} threads, "
          f"{baseline['fds']} fds", flush=True)
    sampler = Sampler(worker, started, args.sample_seconds, progress)
    sampler.start()

    answers: Counter[str] = Counter()
    accepted: dict[str, Plan] = {}
    latencies: list[float] = []
    cancels: list[tuple[float, str]] = []
    cancel_answers: Counter[str] = Counter()
    lock = threading.Lock()
    session = threading.local()

    def http() -> requests.Session:
        if not hasattr(session, "s"):
            session.s = requests.Session()
        return session.s

    def submit(plan: Plan) -> None:
        began = time.monotonic()
        try:
            answer = http().post(f"{base}/tasks", json=plan.body, timeout=60)
            code = str(answer.status_code)
        except requests.RequestException as exc:
            code = f"error {type(exc).__name__}"
        with lock:
            latencies.append(time.monotonic() - began)
            answers[code] += 1
            progress["submitted"] += 1
            if code == "202":
                accepted[plan.task_id] = plan
                if plan.cancel_after is not None:
                    heapq.heappush(cancels, (time.monotonic() + plan.cancel_after, plan.task_id))
            elif len(answers) < 20:
                print(f"  submit {plan.task_id} ({plan.kind}) answered {code}: {getattr(answer, 'text', '')[:200]}",
                      flush=True)

    def cancel_loop(done: threading.Event) -> None:
        while not (done.is_set() and not cancels):
            with lock:
                due = cancels[0][1] if cancels and cancels[0][0] <= time.monotonic() else None
                if due is not None:
                    heapq.heappop(cancels)
            if due is None:
                time.sleep(0.02)
                continue
            try:
                answer = http().post(f"{base}/tasks/{due}/cancel", timeout=60)
                cancel_answers[f"{answer.status_code} {answer.json().get('status')}"] += 1
            except requests.RequestException as exc:
                cancel_answers[f"error {type(exc).__name__}"] += 1

    submitted_all = threading.Event()
    canceller = threading.Thread(target=cancel_loop, args=(submitted_all,), daemon=True)
    canceller.start()
    next_report = args.report_seconds
    print(f"{'t (s)':>7} {'submitted':>9} {'RSS MiB':>8} {'threads':>7} {'fds':>5} {'children':>8}", flush=True)
    print(f"{0:>7} {0:>9} {baseline['rss_mib']:>8} {baseline['threads']:>7} {baseline['fds']:>5} "
          f"{baseline['children']:>8}", flush=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for index, plan in enumerate(planned):
            delay = started + index / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(submit, plan)
            if time.monotonic() - started >= next_report and sampler.samples:
                next_report += args.report_seconds
                last = sampler.samples[-1]
                print(f"{last['t']:>7} {progress['submitted']:>9} {last['rss_mib']:>8} {last['threads']:>7} "
                      f"{last['fds']:>5} {last['children']:>8}", flush=True)
    submit_seconds = time.monotonic() - started
    submitted_all.set()
    canceller.join()
    print(f"submitted {args.tasks} in {submit_seconds:.0f} s ({args.tasks / submit_seconds:.1f}/s); answers "
          f"{dict(answers)}; cancels {dict(cancel_answers)}", flush=True)

    settle(base, time.monotonic() + args.drain_timeout)
    drained_at = time.monotonic() - started
    print(f"drained at {drained_at:.0f} s", flush=True)

    # Every accepted task, read back.
    def read(task_id: str) -> tuple[str, dict[str, Any] | None]:
        answer = http().get(f"{base}/tasks/{task_id}", timeout=60)
        return task_id, answer.json() if answer.status_code == 200 else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        records = dict(pool.map(read, list(accepted)))
    statuses: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    lost = [task_id for task_id, record in records.items() if record is None]
    stuck = [task_id for task_id, record in records.items() if record and record["status"] not in TERMINAL]
    events_given_up = events_pending = events_total = 0
    callback_mismatch = []
    for task_id, record in records.items():
        if record is None:
            continue
        plan = accepted[task_id]
        statuses[f"{plan.kind}:{record['status']}"] += 1
        if record["status"] != "success" and not (record["status"] == "canceled" and plan.cancel_after is not None):
            unexpected[f"{plan.kind}: {record['status']}: {record['message']}"] += 1
        events = record.get("callbacks") or []
        events_total += len(events)
        events_given_up += sum(event["state"] == "failed" for event in events)
        events_pending += sum(event["state"] == "pending" for event in events)
        delivered = [event["sequence"] for event in events if event["state"] == "delivered"]
        seen = receiver.runs.get((task_id, record["run_id"]), RunLog()).delivered
        if delivered != seen:
            callback_mismatch.append(task_id)
    ledger_counts = Counter(ledger.read_text().split())
    started_twice = sorted(task_id for task_id, count in ledger_counts.items() if count > 1)
    duplicates = sum(log.duplicates for log in receiver.runs.values())
    out_of_order = sum(log.out_of_order for log in receiver.runs.values())
    failed_answers = sum(log.failed_answers for log in receiver.runs.values())

    # Leftovers, once idle for a moment (helper threads finish, pools shrink).
    time.sleep(15)
    leftover_processes = descendants(worker)
    containers: list[str] = []
    if image is not None:
        listed = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL_INSTANCE}={instance}"],
                                capture_output=True, text=True, timeout=60)
        containers = listed.stdout.split()
    worktrees = subprocess.run(["git", "-C", str(scratch / "repo"), "worktree", "list", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.count("worktree ") - 1
    worktree_dirs = len(os.listdir(scratch / "wt"))
    sampler.stopping.set()
    sampler.join()
    end = sample(worker, started, args.tasks)
    curve = [baseline, *sampler.samples, end]

    print()
    print(f"curve (every {args.report_seconds:g} s):")
    print(f"{'t (s)':>7} {'submitted':>9} {'RSS MiB':>8} {'threads':>7} {'fds':>5} {'children':>8}")
    shown_at = -args.report_seconds
    for point in curve:
        if point is end or point["t"] - shown_at >= args.report_seconds:
            shown_at = point["t"]
            print(f"{point['t']:>7} {point['submitted']:>9} {point['rss_mib']:>8} {point['threads']:>7} "
                  f"{point['fds']:>5} {point['children']:>8}")
    print()
    rows = [
        ("tasks submitted / accepted", f"{args.tasks} / {len(accepted)}  (answers {dict(answers)})"),
        ("submit rate achieved", f"{args.tasks / submit_seconds:.1f}/s over {submit_seconds:.0f} s"),
        ("submit latency", f"median {percentile(latencies, 0.5) * 1000:.1f} ms, "
                           f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"),
        ("cancels", str(dict(cancel_answers))),
        ("final statuses", str(dict(sorted(statuses.items())))),
        ("tasks lost", str(len(lost))),
        ("tasks stuck (not terminal)", str(len(stuck))),
        ("tasks started twice (ledger)", str(len(started_twice))),
        ("unexpected outcomes", str(sum(unexpected.values()))),
        ("callback events", f"{events_total}: {events_given_up} given up, {events_pending} pending; "
                            f"{receiver.requests} requests, {failed_answers} answered 500 on purpose"),
        ("callbacks duplicated / out of order", f"{duplicates} / {out_of_order}"),
        ("runs whose delivered events differ from the receiver's", str(len(callback_mismatch))),
        ("leftover processes / containers / worktrees (dirs)",
         f"{len(leftover_processes)} / {len(containers)} / {worktrees} ({worktree_dirs})"),
        ("worker cold (before the warm-up)", f"RSS {cold['rss_mib']} MiB, {cold['threads']} threads, "
                                             f"{cold['fds']} fds"),
        ("RSS MiB start -> max -> end", f"{baseline['rss_mib']} -> {max(p['rss_mib'] for p in curve)} -> "
                                        f"{end['rss_mib']}"),
        ("threads start -> max -> end", f"{baseline['threads']} -> {max(p['threads'] for p in curve)} -> "
                                        f"{end['threads']}"),
        ("open fds start -> max -> end", f"{baseline['fds']} -> {max(p['fds'] for p in curve)} -> {end['fds']}"),
        ("drained (all terminal, callbacks settled)", f"{drained_at:.0f} s after the first submit"),
    ]
    table(rows)
    for text, count in unexpected.most_common(10):
        print(f"  unexpected x{count}: {text}")
    return {
        "tasks": args.tasks, "rate": args.rate, "seed": args.seed, "mix": dict(kinds),
        "max_concurrency": args.max_concurrency, "cancel_fraction": args.cancel_fraction,
        "callback_fail_fraction": args.callback_fail_fraction, "answers": dict(answers),
        "accepted": len(accepted), "submit_seconds": round(submit_seconds, 1),
        "submit_latency_ms": {"median": round(percentile(latencies, 0.5) * 1000, 1),
                              "p99": round(percentile(latencies, 0.99) * 1000, 1)},
        "cancels": dict(cancel_answers), "statuses": dict(statuses), "lost": lost, "stuck": stuck,
        "started_twice": started_twice, "unexpected": dict(unexpected),
        "callback_events": events_total, "callback_events_given_up": events_given_up,
        "callback_events_pending": events_pending, "callback_requests": receiver.requests,
        "callback_failed_on_purpose": failed_answers, "callback_duplicates": duplicates,
        "callback_out_of_order": out_of_order, "callback_mismatch": callback_mismatch[:50],
        "leftover_processes": len(leftover_processes), "leftover_containers": len(containers),
        "leftover_worktrees": worktrees, "leftover_worktree_dirs": worktree_dirs,
        "drained_seconds": round(drained_at, 1), "warmup": args.warmup, "cold": cold, "start": baseline, "end": end, "curve": curve,
    }


if __name__ == "__main__":
    main()
