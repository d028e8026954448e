"""The real service: the gunicorn command from the README with the repository's config, on a free port of
127.0.0.1, for the tests that need real HTTP (streaming, slow clients, signals, other users, the browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from support.paths import REPO
from support.waiting import wait_for

__all__ = ["GUNICORN", "free_port", "start_service", "stop_service"]

GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    """A port nothing listens on right now (for a service to bind, or a receiver that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """Start gunicorn in its own session with ``env`` added, data and log (gunicorn.log) under ``tmp_path``;
    return the process and its base URL once /health answers."""
    port = free_port()
    environment = dict(os.environ, HOST_RUNNER_BIND=f"127.0.0.1:{port}", HOST_RUNNER_DATA_DIR=str(tmp_path / "data"),
                       **env)
    log = open(tmp_path / "gunicorn.log", "ab")
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "api.app:create_app()"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/health", timeout=1).json()["status"] == "ok"
        except requests.RequestException:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            return False

    wait_for(healthy, timeout=30, what="gunicorn to answer")
    return process, base


def stop_service(process: subprocess.Popen) -> int:
    """Stop the service as an operator would (SIGTERM) and return its exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=40)
