"""The dashboard at 1,000 tasks: 1,000 finished mock tasks (each printed a 16 KiB prompt, so the output tails
are not empty) on the real gunicorn service, the page open in headless Chromium (tests/support/browser.py).

Prints and writes to bench/results/dashboard.json, over 20 polls:
- the size and fetch time of what the page polls (GET /tasks?brief=true&limit=1000) next to the full list;
- how long the page's API round (the task list and /debug/actors) and one redraw of every panel took, both
  measured by the page itself (performance.now());
- the longest main-thread task Chromium reported while polling (PerformanceObserver "longtask": any task over
  50 ms; none means the page never blocked input that long) and how long flipping a list page takes;
- how many table rows the page draws.
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
from support.browser import start_browser, stop_browser  # noqa: E402
from service import REPO, service  # noqa: E402

TASKS = 1000
SAMPLES = 20
PROMPT = "x" * 16384  # the mock executor prints its prompt: 16 KiB of stdout per task

WATCH_LONG_TASKS = """
window.__longest = 0; window.__longTasks = 0;
new PerformanceObserver((list) => { for (const entry of list.getEntries()) {
  window.__longTasks += 1; window.__longest = Math.max(window.__longest, entry.duration); } })
  .observe({ type: "longtask", buffered: true });
"""
FLIP_PAGE = """
const began = performance.now();
document.querySelector(arguments[0]).click();
return performance.now() - began;
"""


def timed_get(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000, len(response.content)


def main() -> None:
    with service(HOST_RUNNER_MOCK_SECONDS="0", HOST_RUNNER_MAX_CONCURRENCY="16") as (base, _worker):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: requests.post(f"{base}/tasks", json={"task_id": f"d{i:04d}", "run_id": "r",
                                                                         "prompt": PROMPT}, timeout=30),
                          range(TASKS)))
        while len(requests.get(f"{base}/tasks?status=success&limit=1000&brief=true", timeout=30).json()["tasks"]) < TASKS:
            time.sleep(0.2)
        lists = {}
        for name, query in (("full", "limit=1000"), ("brief", "brief=true&limit=1000")):
            rounds = [timed_get(f"{base}/tasks?{query}") for _ in range(5)]
            lists[name] = {"bytes": rounds[0][1], "fetch_ms_median": round(statistics.median(r[0] for r in rounds), 1)}
        with tempfile.TemporaryDirectory() as scratch:
            profile = Path(scratch) / "profile"
            profile.mkdir()
            driver = start_browser(profile)
            try:
                driver.get(f"{base}/")
                driver.execute_script(WATCH_LONG_TASKS)
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
                flips = [driver.execute_script(FLIP_PAGE, "#finished-pager .next") for _ in range(10)]
                rows = driver.execute_script("return document.querySelectorAll('tbody tr').length")
                count = driver.execute_script("return document.getElementById('finished-count').textContent")
                long_tasks = driver.execute_script("return [window.__longTasks, window.__longest]")
            finally:
                stop_browser(driver, profile)
    result = {
        "tasks": TASKS, "stdout_bytes_per_task": len(PROMPT), "samples": len(render),
        "finished_count_shown": count, "table_rows_drawn": rows,
        "task_list": lists,
        "api_round_ms": {"median": statistics.median(fetch), "max": max(fetch)},
        "render_ms": {"median": statistics.median(render), "max": max(render)},
        "page_flip_ms": {"median": round(statistics.median(flips), 1), "max": round(max(flips), 1)},
        "long_tasks": {"count": long_tasks[0], "longest_ms": long_tasks[1]},
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    print(f"dashboard with {TASKS} tasks ({len(render)} polls):\n"
          f"  polled list (brief): {lists['brief']['bytes'] / 1024:.0f} KiB in {lists['brief']['fetch_ms_median']} ms; "
          f"full list: {lists['full']['bytes'] / 1024:.0f} KiB in {lists['full']['fetch_ms_median']} ms\n"
          f"  page: API round median {result['api_round_ms']['median']:.1f} ms (max {result['api_round_ms']['max']:.1f}), "
          f"redraw median {result['render_ms']['median']:.1f} ms (max {result['render_ms']['max']:.1f}), "
          f"page flip median {result['page_flip_ms']['median']} ms (max {result['page_flip_ms']['max']})\n"
          f"  main-thread tasks over 50 ms: {long_tasks[0]} (longest {long_tasks[1]:.0f} ms); "
          f"{rows} table rows drawn, finished count shown {count}")
    (REPO / "bench" / "results" / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
