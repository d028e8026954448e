"""A cancel that arrives while a worktree is still being set up (a slow ``post-checkout`` hook) means the command
never starts: no ``running`` transition, status ``canceled``, the worktree removed. Real git, a real hook."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from support.git_repos import isolated, make_repo, worktree_list
from support.receivers import CallbackReceiver
from support.runner import shell_runner
from support.waiting import wait_for

HOOK_SECONDS = 2


def test_a_cancel_during_worktree_setup_means_the_command_never_runs(
        make_runner, tmp_path: Path, receiver: CallbackReceiver):
    repo = make_repo(tmp_path / "repo")
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nsleep {HOOK_SECONDS}\n")
    hook.chmod(0o755)
    before = worktree_list(repo)
    marker = tmp_path / "ran"
    runner = shell_runner(make_runner, f"touch {marker}")
    path = tmp_path / "wt"
    submitted = runner.submit(task_id="slow-setup", status_callback_url=receiver.url, **isolated(repo, path, "slow"))
    assert submitted.status_code == 202, submitted.text
    time.sleep(0.5)  # the hook is running: the actor is still starting
    assert runner.get("slow-setup")["status"] == "queued"
    threading.Thread(target=runner.cancel, args=("slow-setup",), daemon=True).start()
    final = runner.wait_status("slow-setup", timeout=30)
    assert (final["status"], final["message"]) == ("canceled", "canceled by api"), final
    assert final["pid"] is None and final["started_at"] is None
    assert not path.exists()
    assert worktree_list(repo) == before
    events = wait_for(lambda: (got := receiver.for_task("slow-setup")) and got[-1].body["status"] == "canceled"
                      and got, what="the terminal callback")
    assert [event.body["status"] for event in events] == ["canceled"]
    time.sleep(HOOK_SECONDS)  # generous: a command released by mistake would have run by now
    assert not marker.exists()
