"""Start the real gunicorn service on 127.0.0.1 for a benchmark and find its worker process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


@contextmanager
def service(**env: str) -> Iterator[tuple[str, int]]:
    """Yield (base URL, worker pid) of a fresh service with its own data directory."""
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as data:
        port = free_port()
        environment = dict(os.environ, HOST_RUNNER_BIND=f"127.0.0.1:{port}", HOST_RUNNER_DATA_DIR=data,
                           HOST_RUNNER_LOG_LEVEL="WARNING", **env)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        process = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                                   env=environment, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    requests.get(f"{base}/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            yield base, worker_pid(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
