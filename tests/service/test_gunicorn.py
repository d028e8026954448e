"""The real gunicorn command from the README, with the repo's config, serving real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from support.paths import REPO
from support.processes import pids_in_group
from support.service import GUNICORN, start_service, stop_service
from support.waiting import wait_for

def test_gunicorn_serves_tasks_end_to_end(tmp_path: Path):
    process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                  HOST_RUNNER_CMD_TEMPLATE="sh -c 'echo \"$HOST_RUNNER_PROMPT\"; sleep 0.2'")
    try:
        response = requests.post(f"{base}/tasks/submit", json={"task_id": "g1", "run_id": "r1", "prompt": "over http"},
                                 timeout=10)
        assert response.status_code == 202
        assert response.headers["Location"] == "/tasks/g1"
        record = wait_for(lambda: (r := requests.get(f"{base}/tasks/g1", timeout=5).json())["status"] == "success" and r,
                          timeout=20)
        assert record["stdout"] == "over http\n"
        bad = requests.post(f"{base}/tasks", data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
        assert bad.status_code == 400 and bad.json()["detail"].startswith("the body is not valid JSON")
    finally:
        assert stop_service(process) == 0
    log = (tmp_path / "gunicorn.log").read_text()
    assert "host-runner stopped" in log  # worker_exit stopped the actors


def test_gunicorn_restart_readopts_a_running_task(tmp_path: Path):
    go = tmp_path / "go"
    env = {"HOST_RUNNER_EXECUTOR": "shell",
           "HOST_RUNNER_CMD_TEMPLATE": f"sh -c 'echo begin; while [ ! -e {go} ]; do sleep 0.05; done; echo end'"}
    process, base = start_service(tmp_path, **env)
    try:
        requests.post(f"{base}/tasks", json={"task_id": "g2", "run_id": "r1", "prompt": "p"}, timeout=10)
        record = wait_for(lambda: (r := requests.get(f"{base}/tasks/g2", timeout=5).json())["status"] == "running" and r)
    finally:
        stop_service(process)
    assert pids_in_group(record["pid"]), "the task must survive the runner's shutdown"
    process, base = start_service(tmp_path, **env)
    try:
        go.touch()
        final = wait_for(lambda: (r := requests.get(f"{base}/tasks/g2", timeout=5).json())["status"] == "success" and r,
                         timeout=20)
        assert final["stdout"] == "begin\nend\n"
    finally:
        stop_service(process)


def test_gunicorn_refuses_a_public_bind_without_a_token(tmp_path: Path):
    environment = dict(os.environ, HOST_RUNNER_BIND="0.0.0.0:0", HOST_RUNNER_DATA_DIR=str(tmp_path))
    environment.pop("HOST_RUNNER_API_TOKEN", None)
    result = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                            env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "HOST_RUNNER_API_TOKEN" in result.stderr


def test_gunicorn_refuses_more_log_followers_than_request_threads(tmp_path: Path):
    environment = dict(os.environ, HOST_RUNNER_DATA_DIR=str(tmp_path), HOST_RUNNER_THREADS="4",
                       HOST_RUNNER_MAX_LOG_FOLLOWERS="4")
    result = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                            env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "HOST_RUNNER_MAX_LOG_FOLLOWERS=4 must be below HOST_RUNNER_THREADS=4" in result.stderr


def test_every_setting_of_the_package_reaches_gunicorn(tmp_path: Path):
    """``host-runner serve`` and gunicorn.conf.py apply the names in ``__all__``: none of the module's settings may be
    left out of it (gunicorn would silently keep its default), and nothing else may be in it."""
    code = ("import json, api.gunicorn_settings as s; from gunicorn.config import Config; "
            "print(json.dumps([sorted(n for n in vars(s) if n in Config().settings), sorted(s.__all__)]))")
    environment = dict(os.environ, HOST_RUNNER_DATA_DIR=str(tmp_path), HOST_RUNNER_LOG_FORMAT="json")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                            timeout=60, check=True)
    settings, exported = json.loads(result.stdout)
    assert settings == exported and "logger_class" in exported and "worker_exit" in exported


def test_kill_9_of_the_whole_service_loses_nothing(tmp_path: Path):
    go = tmp_path / "go"
    env = {"HOST_RUNNER_EXECUTOR": "shell", "HOST_RUNNER_MAX_CONCURRENCY": "2",
           "HOST_RUNNER_CMD_TEMPLATE": "sh -c 'echo \"start $HOST_RUNNER_TASK_ID\"; "
                                       f"while [ ! -e {go} ]; do sleep 0.05; done; exit \"$HOST_RUNNER_PROMPT\"'"}
    process, base = start_service(tmp_path, **env)
    for index, code in enumerate((0, 3, 0)):
        requests.post(f"{base}/tasks", json={"task_id": f"k{index}", "run_id": "r", "prompt": str(code)}, timeout=10)
    wait_for(lambda: all(requests.get(f"{base}/tasks/k{i}", timeout=5).json()["stdout"] for i in (0, 1)))
    os.killpg(process.pid, signal.SIGKILL)  # master and worker at once: no graceful path at all
    process.wait(timeout=10)
    process, base = start_service(tmp_path, **env)
    try:
        assert requests.get(f"{base}/tasks/k2", timeout=5).json()["status"] == "queued"
        go.touch()
        finals = [wait_for(lambda i=i: (r := requests.get(f"{base}/tasks/k{i}", timeout=5).json())["status"]
                           in ("success", "failed") and r, timeout=30) for i in range(3)]
    finally:
        stop_service(process)
    assert [record["exit_code"] for record in finals] == [0, 3, 0]
    assert [record["stdout"] for record in finals] == ["start k0\n", "start k1\n", "start k2\n"]
