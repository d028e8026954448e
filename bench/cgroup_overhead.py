"""The cost of a cgroup per task, beside today's spawn cost, measured in the same run.

One host task's process life as the TaskActor drives it (``ProcessLauncher``: start the wrapper, release it,
wait for ``true`` to end, read its outcome and usage, finish), with the runner's native wrapper:
- baseline: no cgroup (``HOST_RUNNER_CGROUPS=off``, or a host without cgroups);
- with a cgroup: made before the wrapper starts, the wrapper moved into it, accounting read and the cgroup
  removed at the end; with every limit set (memory, pids, cpu) on v1, as an operator would; on v2 as far as this
  host's unified hierarchy allows (no controllers: membership and removal only).
The two alternate round by round, so that whatever else runs on this shared machine weighs on both alike; only
the difference between them in this run means anything. Needs root and a writable cgroup hierarchy (the
backend ``auto`` picks); prints a table and writes bench/results/cgroup_overhead.json.
Run: ``.venv/bin/python bench/cgroup_overhead.py [rounds]``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import summary_ms, table, write_result  # noqa: E402
from host_runner.domain.limits import CgroupRequest, TaskLimits, cgroup_name  # noqa: E402
from host_runner.limits import prepare_cgroups  # noqa: E402
from host_runner.ops.config import Config  # noqa: E402
from host_runner.run.launchers import ProcessLauncher  # noqa: E402
from host_runner.run.process_group import ProcessSpec, RunFiles  # noqa: E402
from host_runner.run.reactor import Reactor  # noqa: E402
from host_runner.run.wrapper_build import prepare_wrapper  # noqa: E402
from host_runner.store.sqlite import Store  # noqa: E402

ROUNDS = 200
LIMITS = TaskLimits(memory=512 * 1024**2, pids=256, cpus=1.0)
ROOT = "/host-runner-bench"


def one_task(config: Config, reactor: Reactor, runs: Path, index: int, cgroup: CgroupRequest | None) -> float:
    files = RunFiles(runs / str(index))
    files.create()
    spec = ProcessSpec(argv=("true",), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd=files.directory)
    started = time.perf_counter()
    launcher = ProcessLauncher(spec, files, reactor, 1.0, config.wrapper_argv, cgroup)
    launcher.start()
    launcher.release()
    assert launcher.spawned is not None
    launcher.spawned.popen.wait()
    launcher.outcome()
    launcher.usage()
    launcher.after_exit()
    launcher.finish()
    return time.perf_counter() - started


def measure(backend: str, rounds: int, data: Path) -> dict[str, Any] | None:
    """``rounds`` tasks without and with a cgroup of ``backend``, alternating; None when it is unavailable."""
    config = prepare_wrapper(Config(data_dir=data, cgroups=backend, cgroup_root=ROOT))
    config = prepare_cgroups(dataclasses.replace(config, instance_id="bench"), Store(data / "db"))
    tree = config.cgroup_tree
    if tree is None:
        print(f"{backend}: {config.cgroup_note}")
        return None
    limits = LIMITS if tree.version == 1 else TaskLimits()  # this host's cgroup2 has no controllers for limits
    reactor = Reactor()
    reactor.start()
    plain: list[float] = []
    contained: list[float] = []
    try:
        for index in range(rounds):
            plain.append(one_task(config, reactor, data / "runs", 2 * index, None))
            request = CgroupRequest(tree, cgroup_name(backend, str(index)), limits)
            contained.append(one_task(config, reactor, data / "runs", 2 * index + 1, request))
    finally:
        reactor.stop()
        tree.close()
    return {"backend": tree.description, "limits": limits.any, "spawn_without_cgroup": summary_ms(plain),
            "spawn_with_cgroup": summary_ms(contained),
            "cgroup_cost_median_ms": (statistics.median(contained) - statistics.median(plain)) * 1000}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    results: dict[str, Any] = {"rounds": rounds}
    rows: list[tuple[str, str]] = []
    for backend in ("v1", "v2"):
        with tempfile.TemporaryDirectory(prefix="cgroup-bench-") as scratch:
            try:
                figures = measure(backend, rounds, Path(scratch))
            finally:
                for mount in ("pids", "memory", "cpu", "cpuacct", "freezer", "unified"):
                    try:
                        Path(f"/sys/fs/cgroup/{mount}{ROOT}").rmdir()
                    except OSError:
                        pass
        if figures is None:
            continue
        results[backend] = figures
        base, with_cgroup = figures["spawn_without_cgroup"], figures["spawn_with_cgroup"]
        rows += [
            (f"{backend}: task `true`, no cgroup (today's spawn)", f"median {base['median_ms']:.2f} ms, "
                                                                   f"p99 {base['p99_ms']:.2f} ms"),
            (f"{backend}: the same in its own cgroup{', limits set' if figures['limits'] else ''}",
             f"median {with_cgroup['median_ms']:.2f} ms, p99 {with_cgroup['p99_ms']:.2f} ms"),
            (f"{backend}: cost of the cgroup per task", f"{figures['cgroup_cost_median_ms']:+.2f} ms at the median "
                                                       f"({figures['backend']})"),
        ]
    table(rows)
    write_result("cgroup_overhead", results)


if __name__ == "__main__":
    main()
