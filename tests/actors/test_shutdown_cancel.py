"""HOST_RUNNER_SHUTDOWN=cancel: stopping the runner leaves no process, container or worktree behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_runner.sandbox.docker_cli import LABEL_INSTANCE
from support.docker import (container_exists, containers_of, docker_available, ensure_busybox_image, remove_containers,
                            require_docker)
from support.git_repos import isolated, make_repo, worktree_list
from support.processes import pids_in_group
from support.runner import shell_runner
from support.waiting import wait_for


@pytest.mark.docker
def test_shutdown_cancel_removes_processes_containers_and_worktrees(make_runner, tmp_path: Path):
    require_docker()
    image = ensure_busybox_image()
    instance = "test-shutdown-cancel"
    repo = make_repo(tmp_path / "repo")
    before = worktree_list(repo)
    runner = shell_runner(make_runner, "echo up; sleep 1000 & sleep 1000", shutdown="cancel", instance_id=instance)
    try:
        runner.submit(task_id="plain")
        runner.submit(task_id="tree", **isolated(repo, tmp_path / "wt", "feature/x"))
        submitted = runner.submit(task_id="box", execution_mode="docker-sandbox",
                                  sandbox={"image": image, "command": ["sleep", "1000"]})
        assert submitted.status_code == 202, submitted.text
        plain = wait_for(lambda: (r := runner.get("plain"))["stdout"] == "up\n" and r)
        tree = wait_for(lambda: (r := runner.get("tree"))["stdout"] == "up\n" and r)
        box = runner.wait_status("box", "running")
        assert (tmp_path / "wt").is_dir() and container_exists(box["container_id"])

        runner.system.stop()

        for record in (plain, tree):
            assert not pids_in_group(record["pid"])
        assert not container_exists(box["container_id"])
        assert containers_of(instance) == []
        assert not (tmp_path / "wt").exists()
        assert worktree_list(repo) == before
        after = runner.restart(shutdown="leave")
        for name in ("plain", "tree", "box"):
            record = after.get(name)
            assert record["status"] == "canceled", record
            assert record["message"] == "canceled: the runner is shutting down"
        assert after.get("tree")["worktree_cleanup_succeeded"] is True
    finally:
        if docker_available():
            remove_containers(f"{LABEL_INSTANCE}={instance}")
