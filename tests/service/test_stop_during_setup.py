"""Stopping the real service (gunicorn, SIGTERM) while a worktree is being set up (a slow ``post-checkout``
hook) leaks nothing: the stop ends in time without a traceback, and the next start removes the half-made
worktree and runs the task, which had never run."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from support.git_repos import isolated, make_repo, worktree_list
from support.service import start_service, stop_service
from support.waiting import wait_for

HOOK_SECONDS = 15  # longer than a stopping runner waits for a run being prepared


def test_stopping_the_service_during_worktree_setup_leaks_nothing(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    hooked = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\nif [ ! -e "{hooked}" ]; then touch "{hooked}"; sleep {HOOK_SECONDS}; fi\n')
    hook.chmod(0o755)
    before = worktree_list(repo)
    marker = tmp_path / "ran"
    env = {"HOST_RUNNER_EXECUTOR": "shell", "HOST_RUNNER_CMD_TEMPLATE": 'sh -c \'touch "$1"\' task {prompt}'}
    process, base = start_service(tmp_path, **env)
    path = tmp_path / "wt"
    body = {"task_id": "slow", "run_id": "r1", "prompt": str(marker), **isolated(repo, path, "slow")}
    submitted = requests.post(f"{base}/tasks/submit", json=body, timeout=10)
    assert submitted.status_code == 202, submitted.text
    wait_for(hooked.exists, what="the hook to run")
    time.sleep(1)
    began = time.monotonic()
    assert stop_service(process) == 0
    assert time.monotonic() - began < 30  # inside gunicorn's graceful timeout: nothing was cut short
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log and "closed database" not in log, log
    assert not marker.exists()

    process, base = start_service(tmp_path, **env)
    try:
        def ended() -> dict | None:
            record = requests.get(f"{base}/tasks/slow", timeout=10).json()
            return record if record["status"] in ("success", "failed", "canceled") else None

        final = wait_for(ended, timeout=60, what="the task to end after the restart")
        assert final["status"] == "success", final
        assert marker.exists()
        assert not path.exists()
        assert worktree_list(repo) == before
    finally:
        assert stop_service(process) == 0
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
