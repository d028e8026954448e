"""isolated-worktree: what a worktree costs per task, through the real service.

Three figures on a generated repository of FILES files:

- baseline: the same ``git worktree add -B`` + ``git worktree remove --force`` + ``prune``, one after the
  other, straight from this script (the least any runner can spend);
- TASKS tasks on one repository, submitted at once (git changes serialised per repository);
- TASKS tasks spread over REPOS repositories (serialised per repository, parallel across them).

Each task runs ``true``, so the time is worktree setup, saving the work and cleanup. Also printed: the submit
latency (the API thread checks the repository, the path and the branch with git before admitting).
Writes bench/results/worktrees.json. Run: ``.venv/bin/python bench/worktrees.py`` (or ``make bench``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from service import service  # noqa: E402

FILES = 2000
TASKS = 20
REPOS = 4


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.com")
    for index in range(FILES):
        directory = root / f"pkg{index % 40}"
        directory.mkdir(exist_ok=True)
        (directory / f"module{index}.py").write_text(f"VALUE = {index}\n" * 20)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "generated")
    return root


def baseline(repo: Path, scratch: Path) -> float:
    started = time.perf_counter()
    for index in range(TASKS):
        path = scratch / f"base-{index}"
        git(repo, "worktree", "add", "-q", "-B", f"base/{index}", "--", str(path), "HEAD")
        git(repo, "worktree", "remove", "--force", "--", str(path))
        git(repo, "worktree", "prune")
    return time.perf_counter() - started


def through_runner(repos: list[Path], scratch: Path, label: str) -> dict[str, float]:
    with service(HOST_RUNNER_EXECUTOR="shell", HOST_RUNNER_CMD_TEMPLATE="true",
                 HOST_RUNNER_MAX_CONCURRENCY=str(TASKS)) as (base, _worker):
        latencies = []
        started = time.perf_counter()
        for index in range(TASKS):
            repo = repos[index % len(repos)]
            body = {"task_id": f"{label}-{index}", "run_id": "1", "prompt": "x", "execution_mode": "isolated-worktree",
                    "workspace": {"project_root": str(repo), "worktree_path": str(scratch / f"{label}-{index}"),
                                  "git_branch": f"{label}/{index}"}}
            sent = time.perf_counter()
            response = requests.post(f"{base}/tasks", json=body, timeout=30)
            latencies.append(time.perf_counter() - sent)
            assert response.status_code == 202, response.text
        pending = {f"{label}-{index}" for index in range(TASKS)}
        while pending:
            for task_id in list(pending):
                record = requests.get(f"{base}/tasks/{task_id}", timeout=10).json()
                if record["status"] not in ("queued", "running"):
                    assert record["status"] == "success", record
                    assert record["worktree_cleanup_succeeded"] is True, record
                    pending.discard(task_id)
            time.sleep(0.02)
        wall = time.perf_counter() - started
    return {"wall_seconds": wall, "submit_p50_ms": statistics.median(latencies) * 1000,
            "submit_max_ms": max(latencies) * 1000}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-wt-") as tmp:
        scratch = Path(tmp)
        repos = [make_repo(scratch / f"repo-{index}") for index in range(REPOS)]
        direct = baseline(repos[0], scratch)
        one = through_runner(repos[:1], scratch, "one")
        many = through_runner(repos, scratch, "many")
    print(f"{TASKS} worktrees of a {FILES}-file repository")
    print(f"{'what':<46}{'value':>12}")
    print(f"{'baseline: add+remove+prune, sequential':<46}{direct:>11.2f}s")
    print(f"{'runner, one repository (submit → all done)':<46}{one['wall_seconds']:>11.2f}s")
    print(f"{f'runner, {REPOS} repositories (submit → all done)':<46}{many['wall_seconds']:>11.2f}s")
    print(f"{'per task, one repository':<46}{one['wall_seconds'] / TASKS * 1000:>10.0f}ms")
    print(f"{'submit latency p50 / max (one repository)':<46}"
          f"{one['submit_p50_ms']:>6.0f}/{one['submit_max_ms']:.0f}ms")
    write_result("worktrees", {"files": FILES, "tasks": TASKS, "repos": REPOS, "baseline_sequential_seconds": direct,
                               "one_repo": one, "spread_over_repos": many})


if __name__ == "__main__":
    main()
