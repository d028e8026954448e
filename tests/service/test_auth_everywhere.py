"""Authentication everywhere, derived from the OpenAPI document (a new route is covered without editing this
file), and no secret in any response or log line of the real service."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

import api.auth
from api.openapi import openapi_document
from support.receivers import CallbackReceiver
from support.service import start_service, stop_service
from support.waiting import wait_for

TOKEN = "tok-3c1f9d0a7e-api"
CALLBACK_SECRET = "sec-88b2e41f5a-sign"
CALLBACK_TOKEN = "cbt-51d7a0c2e9-recv"
SECRETS = (TOKEN, CALLBACK_SECRET, CALLBACK_TOKEN)


def document_routes() -> list[tuple[str, str, bool]]:
    """(METHOD, concrete path, public) for every operation in the document; path parameters become 'x'."""
    routes = []
    for template, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            path = re.sub(r"\{[^}]+\}", "x", template)
            routes.append((method.upper(), path, operation.get("security") == []))
    return routes


ROUTES = document_routes()
PROTECTED = [(method, path) for method, path, public in ROUTES if not public]
BAD_HEADERS = [None, "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x",
               f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN.upper()}", f"Bearer\t{TOKEN}x"]


def test_the_document_lists_the_routes_we_expect_to_guard():
    """Guards the derivation itself: if the document lost its operations, the parametrised test would pass
    vacuously."""
    paths = {path for _, path in PROTECTED}
    assert {"/tasks", "/tasks/submit", "/tasks/x", "/tasks/x/cancel", "/tasks/x/logs", "/debug/actors",
            "/debug/threads", "/metrics", "/openapi.json"} <= paths
    # Public: /health, and the dashboard's static shell (a page and its assets without any data: a browser
    # following a link cannot send a bearer header; tests/service/test_dashboard.py checks the shell holds no data).
    assert sorted((method, path) for method, path, public in ROUTES if public) == [
        ("GET", "/"), ("GET", "/health"), ("GET", "/ui"), ("GET", "/ui/x")]


@pytest.fixture
def secured(make_runner):
    return make_runner(api_token=TOKEN)


@pytest.mark.parametrize("method,path", PROTECTED + [("GET", "/tasks/x/logs?follow=true"), ("GET", "/nowhere"),
                                                     ("DELETE", "/tasks/x")])
@pytest.mark.parametrize("header", BAD_HEADERS)
def test_every_route_but_health_needs_the_token(secured, method, path, header):
    headers = {"Authorization": header} if header else {}
    path, _, query = path.partition("?")
    result = secured.client.simulate_request(method, path, headers=headers, json={}, query_string=query or None)
    assert result.status_code == 401, (method, path, result.text)
    assert result.headers["Content-Type"].startswith("application/json")
    assert TOKEN not in result.text and TOKEN[:-1] not in result.text


def test_the_right_token_opens_every_route(secured):
    """The negative test above would also pass if nothing ever answered: with the token, no route says 401."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for method, path in PROTECTED:
        body = {"task_id": "opened", "run_id": "r", "prompt": "p"} if method == "POST" else None
        result = secured.client.simulate_request(method, path, headers=headers, json=body)
        assert result.status_code != 401, (method, path, result.text)
    assert secured.client.simulate_get("/health").status_code == 200


def test_the_token_is_compared_in_constant_time():
    """The middleware compares with hmac.compare_digest and nothing else touches the expected token."""
    source = inspect.getsource(api.auth)
    tree = ast.parse(source)
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls
    comparisons = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    assert not [text for text in comparisons if "expected" in text], comparisons


def test_no_secret_in_any_response_or_log_line(tmp_path: Path):
    """The real gunicorn with JSON logs, a token, a callback secret and a callback token: exercise every route,
    successes and failures, then look for the secrets in every response body and every log line."""
    receiver = CallbackReceiver()
    process, base = start_service(
        tmp_path, HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_CALLBACK_SECRET=CALLBACK_SECRET,
        HOST_RUNNER_LOG_FORMAT="json", HOST_RUNNER_LOG_LEVEL="DEBUG", HOST_RUNNER_EXECUTOR="shell",
        HOST_RUNNER_CALLBACK_BACKOFF_SECONDS="0.05",
        HOST_RUNNER_CMD_TEMPLATE="sh -c 'env; echo \"$HOST_RUNNER_PROMPT\"; echo to-stderr >&2; "
                                 "[ \"$HOST_RUNNER_PROMPT\" = slow ] && sleep 30; true'")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bodies: list[str] = []

    def call(method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        response = requests.request(method, f"{base}{path}", headers=auth if headers is None else headers,
                                    timeout=15, **kwargs)
        bodies.append(f"{method} {path} -> {response.status_code}\n{response.headers}\n{response.text}")
        return response

    try:
        task = {"task_id": "s1", "run_id": "r1", "prompt": "hello", "status_callback_url": receiver.url,
                "status_callback_token": CALLBACK_TOKEN}
        assert call("POST", "/tasks/submit", json=task).status_code == 202
        wait_for(lambda: call("GET", "/tasks/s1").json()["status"] == "success", timeout=20)
        wait_for(lambda: len(receiver.delivered("s1")) >= 2, timeout=20, what="callbacks delivered")
        # the callback token does reach the receiver: it is a secret, not a lost value
        assert any(item.headers.get("X-Runner-Token") == CALLBACK_TOKEN for item in receiver.for_task("s1"))
        slow = dict(task, task_id="s2", prompt="slow")
        assert call("POST", "/tasks", json=slow).status_code == 202
        wait_for(lambda: call("GET", "/tasks/s2").json()["status"] == "running", timeout=20)
        call("GET", "/debug/actors")
        call("GET", "/debug/threads")
        call("GET", "/debug/threads", params={"format": "text"})
        call("GET", "/metrics")
        call("GET", "/openapi.json")
        call("GET", "/tasks")
        call("GET", "/tasks/s1/logs")
        call("GET", "/tasks/s1/logs", params={"stream": "stderr"})
        call("GET", "/tasks/s1/logs", params={"follow": "true"})
        assert call("POST", "/tasks/s2/cancel").json()["status"] == "canceled"
        # a retry, a collision, refusals and wrong tokens (a near-miss token must not be echoed either)
        call("POST", "/tasks", json=task)
        call("POST", "/tasks", json=dict(task, status_callback_url="ftp://x", run_id="r2"))
        call("POST", "/tasks", json=dict(task, task_id="bad/id"))
        call("POST", "/tasks", data=b"{", headers={**auth, "Content-Type": "application/json"})
        for header in (f"Bearer {TOKEN}x", f"Bearer {CALLBACK_SECRET}", f"Basic {TOKEN}"):
            assert call("GET", "/tasks", headers={"Authorization": header}).status_code == 401
        call("GET", "/health", headers={})
        call("GET", "/tasks/nope")
    finally:
        assert stop_service(process) == 0
        receiver.close()
    log = (tmp_path / "gunicorn.log").read_text()
    json_lines = [line for line in log.splitlines() if line.startswith("{")]
    assert json_lines, "the service must have logged in JSON"
    assert any(json.loads(line).get("task_id") == "s1" for line in json_lines if '"task_id"' in line)
    for secret in SECRETS:
        assert secret not in log, f"a secret reached the log: {secret}"
        for body in bodies:
            assert secret not in body, f"a secret reached a response: {secret}\n{body[:2000]}"
    # the task's own output (its environment printed) must not carry the runner's secrets either
    for path in (tmp_path / "data").rglob("*.log"):
        text = path.read_text(errors="replace")
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {path}"
