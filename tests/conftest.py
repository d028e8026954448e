"""Shared test fixtures: a runner (real actors, real processes) behind Falcon's TestClient, a real HTTP
callback receiver on 127.0.0.1, and helpers to wait for conditions without fixed sleeps."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from actors.system import ActorSystem  # noqa: E402
from api.app import create_api  # noqa: E402
from host_runner.config import Config  # noqa: E402
from host_runner.process import group_alive, group_members  # noqa: E402
from openapi_check import check_response  # noqa: E402

TESTS = Path(__file__).resolve().parent
FAKE_BIN = TESTS / "bin"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return group_members({pgid})


class ValidatingClient(testing.TestClient):
    """A TestClient that checks every response against the OpenAPI document (tests/openapi_check.py)."""

    def simulate_request(self, *args: Any, **kwargs: Any) -> testing.Result:
        result = super().simulate_request(*args, **kwargs)
        method = args[0] if args else kwargs.get("method", "GET")
        path = args[1] if len(args) > 1 else kwargs.get("path", "/")
        query = dict(kwargs.get("params") or {})
        if kwargs.get("query_string"):
            path = f"{path}?{kwargs['query_string']}"
        check_response(method, path, query, result.status_code, result.headers, result.content)
        return result


class Runner:
    """A started actor system and a TestClient on its API."""

    def __init__(self, config: Config, env: dict[str, str] | None, started: list[Runner]) -> None:
        self.config = config
        self.env = env
        self.started = started
        started.append(self)  # so the fixture stops every runner a test made, restarts included
        self.system = ActorSystem.start(config, env)
        assert self.system.supervisor is not None
        self.client = ValidatingClient(create_api(self.system.supervisor, config, registry=self.system.registry,
                                                  callbacks=self.system.callbacks))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_token}"} if self.config.api_token else {}

    def submit(self, **body: Any) -> testing.Result:
        body.setdefault("run_id", "run-1")
        body.setdefault("prompt", "hello")
        return self.client.simulate_post("/tasks/submit", json=body, headers=self.headers())

    def get(self, task_id: str) -> dict[str, Any]:
        result = self.client.simulate_get(f"/tasks/{task_id}", headers=self.headers())
        assert result.status_code == 200, result.text
        return result.json

    def cancel(self, task_id: str) -> testing.Result:
        return self.client.simulate_post(f"/tasks/{task_id}/cancel", headers=self.headers())

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
        wanted = statuses or ("success", "failed", "canceled")
        return wait_for(lambda: (record := self.get(task_id))["status"] in wanted and record, timeout,
                        what=f"{task_id} to be {'/'.join(wanted)}")

    def restart(self, **changes: Any) -> Runner:
        """Stop this runner (processes keep running) and start another on the same data directory."""
        self.system.stop()
        return Runner(dataclasses.replace(self.config, **changes), self.env, self.started)

    def stop(self, kill_tasks: bool = True) -> None:
        """Stop the actors; unless told otherwise, first kill whatever a test left running."""
        if self.system.store is not None and kill_tasks:
            for record in self.system.store.active():
                if record.pid and group_alive(record.pid):
                    os.killpg(record.pid, signal.SIGKILL)
        self.system.stop()


@pytest.fixture
def make_runner(tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    runners: list[Runner] = []

    def make(env: dict[str, str] | None = None, **settings: Any) -> Runner:
        settings.setdefault("data_dir", tmp_path / "data")
        settings.setdefault("kill_grace_seconds", 2.0)
        settings.setdefault("callback_backoff_seconds", 0.05)
        return Runner(Config(**settings), env, runners)

    yield make
    for runner in reversed(runners):
        if runner.system.supervisor is not None:
            runner.stop()


@pytest.fixture
def runner(make_runner: Callable[..., Runner]) -> Runner:
    return make_runner()


def shell_runner(make_runner: Callable[..., Runner], script: str, **settings: Any) -> Runner:
    """A runner whose shell executor runs ``sh -c SCRIPT`` (the prompt is in $HOST_RUNNER_PROMPT)."""
    return make_runner(executor="shell", cmd_template=("sh", "-c", script, "task"), **settings)


# --- a real HTTP receiver for callbacks ------------------------------------------------------------------------
@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class CallbackReceiver:
    """An HTTP server on 127.0.0.1 recording every POST. ``responses`` is a list of status codes to answer,
    consumed one per request (then 200); ``delay`` makes it slow."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.responses: list[int] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    code = receiver.responses.pop(0) if receiver.responses else 200
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def for_task(self, task_id: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.body.get("task_id") == task_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.close()
