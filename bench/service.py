"""Start the real gunicorn service on 127.0.0.1 for a benchmark and find its worker process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def threads_of(pid: int) -> int:
    """The number of threads of process ``pid`` (0 if /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


class Service:
    """One gunicorn service (master + worker) in its own process group, on a data directory that outlives it."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = dict(os.environ, HOST_RUNNER_BIND=f"127.0.0.1:{self.port}", HOST_RUNNER_DATA_DIR=str(data_dir),
                        HOST_RUNNER_LOG_LEVEL="WARNING", **env)
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        log = open(self.data_dir.parent / f"{self.data_dir.name}-gunicorn.log", "ab")
        self.process = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            try:
                requests.get(f"{self.base}/health", timeout=1)
                return self
            except requests.RequestException:
                if self.process.poll() is not None:
                    raise RuntimeError("gunicorn exited; see its log") from None
                time.sleep(0.05)
        raise RuntimeError("gunicorn did not answer")

    @property
    def worker_pid(self) -> int:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def kill(self) -> None:
        """SIGKILL master and worker at once (no graceful path)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


@contextmanager
def service(**env: str) -> Iterator[tuple[str, int]]:
    """Yield (base URL, worker pid) of a fresh service with its own data directory."""
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        running = Service(Path(scratch) / "data", **env).start()
        try:
            yield running.base, running.worker_pid
        finally:
            running.stop()
