"""Shared test fixtures: a runner (real actors, real processes) behind Falcon's TestClient, a real HTTP
callback receiver on 127.0.0.1, and helpers to wait for conditions without fixed sleeps."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import signal
import socket
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
from host_runner.ops.config import Config  # noqa: E402
from host_runner.run.process_group import group_alive, group_members  # noqa: E402
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
        kwargs.setdefault("host", "127.0.0.1")  # a name the runner answers to (Falcon's default is not one)
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
        assert self.system.service is not None
        self.client = ValidatingClient(create_api(self.system.service, config))

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
    # mock too: tests of faults check that the runner still serves with a task that does not run the script
    settings.setdefault("allowed_executors", ("shell", "mock"))
    return make_runner(executor="shell", cmd_template=("sh", "-c", script, "task"), **settings)


# --- a real HTTP receiver for callbacks ------------------------------------------------------------------------
@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    code: int = 200  # what the receiver answered (0: it dropped the connection instead)


class CallbackReceiver:
    """An HTTP server on 127.0.0.1 recording every POST.

    ``responses`` is a list of status codes to answer, consumed one per request, then ``default`` (200);
    ``delay`` makes it slow; ``resets`` drops that many connections after reading the request (the sender never
    learns whether it arrived); ``hang`` (an Event) makes requests wait until it is set. ``port`` binds a given
    port (to bring a receiver "back" where a dead one was).
    """

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.responses: list[int] = []
        self.default = 200
        self.delay = 0.0
        self.resets = 0
        self.hang: threading.Event | None = None
        self.hanging = 0  # requests waiting on ``hang`` right now
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                hang = receiver.hang
                if hang is not None:
                    with receiver.lock:
                        receiver.hanging += 1
                    hang.wait()
                    with receiver.lock:
                        receiver.hanging -= 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    if receiver.resets > 0:
                        receiver.resets -= 1
                        code = 0
                    else:
                        code = receiver.responses.pop(0) if receiver.responses else receiver.default
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, raw, code))
                if code == 0:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # no answer at all
                    return
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.redirect_to = "http://127.0.0.1:9/elsewhere"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def for_task(self, task_id: str) -> list[Received]:
        """Every request about ``task_id`` (retries included), in arrival order."""
        with self.lock:
            return [item for item in self.received if item.body.get("task_id") == task_id]

    def delivered(self, task_id: str) -> list[Received]:
        """The requests about ``task_id`` that were answered 2xx, de-duplicated by event id, in arrival order."""
        seen: set[str] = set()
        result = []
        for item in self.for_task(task_id):
            if 200 <= item.code < 300 and item.body["event_id"] not in seen:
                seen.add(item.body["event_id"])
                result.append(item)
        return result

    def close(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: str, headers: dict[str, str], body: bytes, max_age: int = 300) -> bool:
    """The receiver-side check documented in the README (kept identical to it)."""
    timestamp = headers["X-Runner-Timestamp"]
    message = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= max_age
    return fresh and hmac.compare_digest(expected, headers["X-Runner-Signature"])


def free_port() -> int:
    """A port nothing listens on right now (for a receiver that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.close()
