"""GET /openapi.json: the document describes every route, and real responses validate against it.

Every TestClient response in the suite is validated (support.runner.ValidatingClient); here the document is
compared with the app's routes, every operation is exercised once, and the checker is shown to reject what
the document does not describe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.openapi import OPERATIONS, openapi_document
from support.openapi_check import UndocumentedResponse, check_response
from support.runner import shell_runner


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, uri template) of every responder the Falcon app has (walking its compiled router)."""
    routes = set()

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            for method, responder in (node.method_map or {}).items():
                # Falcon fills in OPTIONS and 405 responders by itself; those are not our endpoints.
                if method != "OPTIONS" and "method_not_allowed" not in getattr(responder, "__name__", ""):
                    routes.add((method.lower(), node.uri_template))
            walk(node.children or [])

    walk(app._router._roots)
    return routes


def test_the_document_lists_exactly_the_routes_the_app_has(runner):
    documented = {(operation.method, operation.path) for operation in OPERATIONS}
    assert app_routes(runner.client.app) == documented


def test_openapi_json_serves_the_document(runner):
    result = runner.client.simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.json == json.loads(json.dumps(openapi_document()))
    assert result.json["openapi"] == "3.1.0"
    assert set(result.json["paths"]["/tasks/{task_id}/logs"]["get"]["responses"]) >= {"200", "401", "404", "422"}


def test_every_operation_answers_as_documented(make_runner, tmp_path: Path):
    """One pass over every operation and its main errors; ValidatingClient checks each answer."""
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f'while [ ! -e {go} ]; do sleep 0.05; done; echo "$HOST_RUNNER_PROMPT"',
                          api_token="tok")
    client, auth = runner.client, runner.headers()
    seen: set[tuple[str, str, int]] = set()

    def call(method: str, path: str, template: str, expected: int, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", auth)
        result = client.simulate_request(method, path, **kwargs)
        assert result.status_code == expected, (method, path, result.text)
        seen.add((method.lower(), template, expected))
        return result

    body = {"task_id": "doc", "run_id": "r1", "prompt": "documented"}
    call("POST", "/tasks/submit", "/tasks/submit", 202, json=body)
    call("POST", "/tasks/submit", "/tasks/submit", 200, json=body)
    call("POST", "/tasks", "/tasks", 409, json={**body, "run_id": "r2"})  # r1 is active until `go`
    call("POST", "/tasks", "/tasks", 422, json={"run_id": "r", "prompt": "p"})
    call("POST", "/tasks", "/tasks", 400, body="{", headers={**auth, "Content-Type": "application/json"})
    call("POST", "/tasks", "/tasks", 415, body="x", headers={**auth, "Content-Type": "text/plain"})
    call("POST", "/tasks", "/tasks", 413, body=b"x" * (1024 * 1024 + 1),
         headers={**auth, "Content-Type": "application/json"})
    go.touch()
    runner.wait_status("doc", "success")
    call("POST", "/tasks", "/tasks", 202, json={**body, "run_id": "r2"})
    call("GET", "/tasks", "/tasks", 200, params={"status": "success", "limit": 5})
    call("GET", "/tasks", "/tasks", 422, params={"limit": 0})
    call("GET", "/tasks", "/tasks", 200, params={"brief": "true"})  # TaskBrief records
    call("GET", "/tasks", "/tasks", 422, params={"brief": "maybe"})
    call("GET", "/tasks/doc", "/tasks/{task_id}", 200)
    call("GET", "/tasks/none", "/tasks/{task_id}", 404)
    call("POST", "/tasks/doc/cancel", "/tasks/{task_id}/cancel", 200)
    call("POST", "/tasks/none/cancel", "/tasks/{task_id}/cancel", 404)
    call("GET", "/tasks/doc/logs", "/tasks/{task_id}/logs", 200, params={"run_id": "r1", "offset": 1})
    call("GET", "/tasks/doc/logs", "/tasks/{task_id}/logs", 200, params={"follow": "true"})
    call("GET", "/tasks/none/logs", "/tasks/{task_id}/logs", 404)
    call("GET", "/tasks/doc/logs", "/tasks/{task_id}/logs", 422, params={"stream": "x"})
    # Agent input (202s are checked by tests/agent/test_agent.py, whose answers the ValidatingClient checks too).
    call("POST", "/tasks/doc/messages", "/tasks/{task_id}/messages", 409, json={"text": "hi"})  # a shell task
    call("POST", "/tasks/none/messages", "/tasks/{task_id}/messages", 404, json={"text": "hi"})
    call("POST", "/tasks/doc/messages", "/tasks/{task_id}/messages", 422, json={})
    call("POST", "/tasks/doc/close", "/tasks/{task_id}/close", 409)
    call("POST", "/tasks/none/close", "/tasks/{task_id}/close", 404)
    call("GET", "/debug/actors", "/debug/actors", 200)
    call("GET", "/debug/actors", "/debug/actors", 422, params={"timeout": "x"})
    call("GET", "/debug/threads", "/debug/threads", 200)
    call("GET", "/debug/threads", "/debug/threads", 200, params={"format": "text"})
    call("GET", "/debug/threads", "/debug/threads", 422, params={"format": "x"})
    call("GET", "/metrics", "/metrics", 200)
    call("GET", "/openapi.json", "/openapi.json", 200)
    call("GET", "/health", "/health", 200, headers={})
    call("GET", "/", "/", 200, headers={})  # the dashboard's shell holds no data: no token needed
    call("GET", "/ui", "/ui", 200, headers={})
    call("GET", "/ui/app.js", "/ui/{name}", 200, headers={})
    call("GET", "/ui/app.css", "/ui/{name}", 200, headers={})
    call("GET", "/ui/nothing.js", "/ui/{name}", 404, headers={})
    for operation in OPERATIONS:
        if not operation.public:
            path = operation.path.replace("{task_id}", "doc")
            call(operation.method.upper(), path, operation.path, 401, headers={}, json={})
    call("GET", "/nowhere", "/nowhere", 404)
    call("DELETE", "/tasks/doc", "/tasks/{task_id}", 405)

    exercised = {(method, template) for method, template, _ in seen}
    assert exercised >= {(operation.method, operation.path) for operation in OPERATIONS}


RECORD = {
    "task_id": "t", "run_id": "r", "execution_mode": "no-workspace", "workspace": None, "status": "success",
    "message": "completed", "executor": "mock", "created_at": "x", "updated_at": "x", "started_at": None,
    "finished_at": None, "exit_code": 0, "stdout": "", "stderr": "", "container_id": None,
    "worktree_cleanup_attempted": None, "worktree_cleanup_succeeded": None, "worktree_cleanup_message": None,
    "pid": None, "timeout_seconds": 600.0, "logs": None,
}
JSON = {"content-type": "application/json"}


def test_the_checker_accepts_a_documented_response():
    check_response("get", "/tasks/t", None, 200, JSON, json.dumps(RECORD).encode())


@pytest.mark.parametrize("method,path,status,headers,body", [
    ("get", "/tasks/t", 200, JSON, {**RECORD, "surprise": 1}),  # an undocumented field
    ("get", "/tasks/t", 200, JSON, {**RECORD, "status": "paused"}),  # a value outside the enum
    ("get", "/tasks/t", 418, JSON, {"error": "I'm a teapot", "detail": "x"}),  # an undocumented status
    ("get", "/tasks/t", 404, JSON, {"error": "Not Found"}),  # an error without its detail
    ("post", "/tasks", 202, JSON, RECORD),  # 202 without its Location header
    ("get", "/tasks/t/logs", 200, {"content-type": "application/octet-stream"}, None),  # no X-Run-Id etc.
    ("get", "/elsewhere", 200, JSON, {}),  # an undocumented path
])
def test_the_checker_rejects_what_the_document_does_not_describe(method, path, status, headers, body):
    raw = json.dumps(body).encode() if body is not None else b"bytes"
    with pytest.raises(UndocumentedResponse):
        check_response(method, path, None, status, headers, raw)
