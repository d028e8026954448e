"""The dashboard at 1,000 tasks: 1,000 finished mock tasks on the real gunicorn service, the page open in
headless Chromium (tests/browser_support.py). Prints, over 20 polls: how long the page's API round
(GET /tasks?limit=1000 and /debug/actors) took, how long one redraw of every panel took (both measured by the
page itself, performance.now()), and how many table rows it draws; writes bench/results/dashboard.json.
Run: ``.venv/bin/python bench/dashboard.py`` (needs chromium and chromium-driver).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser_support import start_browser, stop_browser  # noqa: E402
from service import REPO, service  # noqa: E402

TASKS = 1000
SAMPLES = 20


def main() -> None:
    with service(HOST_RUNNER_MOCK_SECONDS="0", HOST_RUNNER_MAX_CONCURRENCY="16") as (base, _worker):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: requests.post(f"{base}/tasks", json={"task_id": f"d{i:04d}", "run_id": "r",
                                                                         "prompt": "p"}, timeout=30),
                          range(TASKS)))
        while len(requests.get(f"{base}/tasks?status=success&limit=1000", timeout=30).json()["tasks"]) < TASKS:
            time.sleep(0.2)
        with tempfile.TemporaryDirectory() as scratch:
            profile = Path(scratch) / "profile"
            profile.mkdir()
            driver = start_browser(profile)
            try:
                driver.get(f"{base}/")
                fetch, render, seen = [], [], set()
                deadline = time.monotonic() + 120
                while len(render) < SAMPLES and time.monotonic() < deadline:
                    stamp = driver.execute_script("return [document.getElementById('updated').textContent,"
                                                  "document.body.dataset.fetchMs, document.body.dataset.renderMs]")
                    if stamp[1] and stamp[2] and stamp[0] not in seen:
                        seen.add(stamp[0])
                        fetch.append(float(stamp[1]))
                        render.append(float(stamp[2]))
                    time.sleep(0.25)
                rows = driver.execute_script("return document.querySelectorAll('tbody tr').length")
                count = driver.execute_script("return document.getElementById('finished-count').textContent")
            finally:
                stop_browser(driver, profile)
    result = {
        "tasks": TASKS, "samples": len(render), "finished_count_shown": count, "table_rows_drawn": rows,
        "api_round_ms": {"median": statistics.median(fetch), "max": max(fetch)},
        "render_ms": {"median": statistics.median(render), "max": max(render)},
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    print(f"dashboard with {TASKS} tasks ({len(render)} polls): API round median {result['api_round_ms']['median']:.1f} ms "
          f"(max {result['api_round_ms']['max']:.1f}), redraw median {result['render_ms']['median']:.1f} ms "
          f"(max {result['render_ms']['max']:.1f}), {rows} table rows drawn, finished count shown {count}")
    (REPO / "bench" / "results" / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
