"""Output capture: one task printing 1 GiB to stdout, against the same command piped to ``cat > /dev/null``.

Prints the wall time of both and the runner worker's peak RSS growth while the task runs; writes
bench/results/output_capture.json. Run: ``.venv/bin/python bench/output_capture.py`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import REPO, rss_kib, service  # noqa: E402

SIZE = 1024 ** 3
COMMAND = f"head -c {SIZE} /dev/zero"


def baseline() -> float:
    started = time.perf_counter()
    head = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
    with open("/dev/null", "wb") as sink:
        subprocess.run(["cat"], stdin=head.stdout, stdout=sink, check=True)
    head.wait()
    return time.perf_counter() - started


def baseline_to_file(directory: Path) -> float:
    """The same bytes written to a file on the disk the runner's data directory uses (what the runner must do)."""
    target = directory / "baseline.out"
    started = time.perf_counter()
    with open(target, "wb") as sink:
        subprocess.run(["head", "-c", str(SIZE), "/dev/zero"], stdout=sink, check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def through_runner() -> dict[str, float]:
    with service(HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE=COMMAND) as (base, worker):
        before = rss_kib(worker)
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(worker))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        requests.post(f"{base}/tasks", json={"task_id": "gib", "run_id": "1", "prompt": "x"}, timeout=10)
        while True:
            record = requests.get(f"{base}/tasks/gib", timeout=10).json()
            if record["status"] not in ("queued", "running"):
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        assert record["status"] == "success", record
        size = Path(record["logs"]["stdout"]).stat().st_size
        assert size == SIZE, size
        return {"wall_seconds": wall, "rss_before_mib": before / 1024, "rss_peak_mib": peak / 1024,
                "rss_growth_mib": (peak - before) / 1024}


def main() -> None:
    direct = baseline()
    to_file = baseline_to_file(Path(tempfile.gettempdir()))
    runner = through_runner()
    result = {"benchmark": "output_capture", "bytes": SIZE, "baseline_cat_seconds": direct,
              "baseline_file_seconds": to_file, **runner, "ratio": runner["wall_seconds"] / direct,
              "ratio_vs_file": runner["wall_seconds"] / to_file, "machine": platform.platform(),
              "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"{'what':<34}{'value':>12}")
    print(f"{'baseline head | cat > /dev/null':<34}{direct:>11.2f}s")
    print(f"{'baseline head > file (same disk)':<34}{to_file:>11.2f}s")
    print(f"{'through the runner (submit→done)':<34}{runner['wall_seconds']:>11.2f}s")
    print(f"{'ratio':<34}{result['ratio']:>12.2f}")
    print(f"{'worker RSS before':<34}{runner['rss_before_mib']:>9.1f} MiB")
    print(f"{'worker RSS peak growth':<34}{runner['rss_growth_mib']:>9.1f} MiB")
    out = REPO / "bench" / "results" / "output_capture.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
