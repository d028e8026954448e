"""The request guard over plain HTTP: which Host names, Origins and content types the API accepts.

The browser's side of the same rules is tests/service/test_browser_attacks.py; here the requests are made by
hand, as a program (or an attacker's script outside a browser) would."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from api.request_guard import allowed_host_names, host_name
from support.receivers import CallbackReceiver
from support.runner import Runner
from support.service import start_service, stop_service
from support.waiting import wait_for

BODY = {"task_id": "t1", "run_id": "r1", "prompt": "hello"}


def post(runner: Runner, headers: dict[str, str], path: str = "/tasks/submit", body: Any = BODY) -> Any:
    return runner.client.simulate_post(path, body=json.dumps(body), headers={"Content-Type": "application/json",
                                                                             **headers})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8765", "localhost", "LOCALHOST:1", "[::1]", "[::1]:8765",
                                  "[0:0:0:0:0:0:0:1]:80"])
def test_loopback_names_are_answered_on_any_port(runner: Runner, host: str):
    assert runner.client.simulate_get("/tasks", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8765", "127.0.0.1.attacker.example",
                                  "localhost.attacker.example", "0.0.0.0:8765", "10.1.2.3", "[::2]:8765",
                                  "127.0.0.2", "localhost.", "[::1]evil.example", "[::1]:1@evil.example",
                                  "127.0.0.1:abc", "localhost:80:80", "127.0.0.1 evil.example", "::1"])
def test_other_names_are_refused_with_json_and_nothing_happens(runner: Runner, host: str):
    for result in (runner.client.simulate_get("/tasks", headers={"Host": host}),
                   runner.client.simulate_get("/tasks/t1", headers={"Host": host}),
                   runner.client.simulate_get("/", headers={"Host": host}),
                   runner.client.simulate_get("/openapi.json", headers={"Host": host}),
                   post(runner, {"Host": host})):
        assert result.status_code == 403, result.text
        assert result.json["detail"].startswith(("this runner does not answer to the name",
                                                 "the Host header is not a host name and port"))
    assert runner.client.simulate_get("/tasks").json["count"] == 0


def test_health_answers_any_name(runner: Runner):
    assert runner.client.simulate_get("/health", headers={"Host": "host.docker.internal:8765"}).json == {
        "status": "ok", "disk": "ok"}


def test_allowed_hosts_and_the_bind_address_are_answered(make_runner):
    runner = make_runner(bind="192.0.2.7:8765", allowed_hosts=("host.docker.internal", "Runner.Example"))
    for host in ("host.docker.internal:8765", "runner.example", "192.0.2.7:8765", "127.0.0.1"):
        assert runner.client.simulate_get("/tasks", headers={"Host": host}).status_code == 200, host
    assert runner.client.simulate_get("/tasks", headers={"Host": "other.example"}).status_code == 403


def test_a_wildcard_bind_is_no_name():
    assert allowed_host_names("0.0.0.0:8765") == allowed_host_names("[::]:8765") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_host_names("unix:/run/x.sock", ("a.example",)) == {"localhost", "127.0.0.1", "::1", "a.example"}
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM:1") == "example.com"
    assert host_name("[::1]evil") is None and host_name("a:b") is None


def test_on_a_unix_socket_any_name_is_answered(make_runner, tmp_path: Path):
    """Clients of a unix socket send made-up names (requests-unixsocket: the socket's path); no browser gets there."""
    runner = make_runner(bind=f"unix:{tmp_path}/runner.sock")
    assert runner.client.simulate_get("/tasks", headers={"Host": "%2Ftmp%2Frunner.sock"}).status_code == 200
    # Browsers' other marks are still refused, and bodies must still be JSON.
    assert runner.client.simulate_get("/tasks", headers={"Origin": "http://a.example"}).status_code == 403
    assert runner.client.simulate_post("/tasks", body="{}", headers={"Content-Type": "text/plain"}).status_code == 415


@pytest.mark.parametrize("origin", ["http://127.0.0.1", "https://127.0.0.1", "HTTP://127.0.0.1"])
def test_the_runners_own_origin_may_post(runner: Runner, origin: str):
    # The dashboard: its Origin is the scheme and the Host it was loaded from.
    answer = post(runner, {"Host": "127.0.0.1", "Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("headers", [
    {"Origin": "http://attacker.example"},
    {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
    {"Origin": "http://localhost"},  # the same machine under another name is another origin too
    {"Origin": "null"},
    {"Origin": ""},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "cross-site"},
])
def test_other_origins_and_sites_are_refused(runner: Runner, headers: dict[str, str]):
    for result in (post(runner, {"Host": "127.0.0.1", **headers}),
                   runner.client.simulate_get("/tasks", headers={"Host": "127.0.0.1", **headers}),
                   runner.client.simulate_post("/tasks/t1/cancel", headers={"Host": "127.0.0.1", **headers})):
        assert result.status_code == 403, result.text
    assert runner.client.simulate_get("/tasks").json["count"] == 0


def test_a_typed_url_is_not_a_cross_site_request(runner: Runner):
    assert runner.client.simulate_get("/tasks", headers={"Sec-Fetch-Site": "none"}).status_code == 200


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8"])
def test_json_with_or_without_a_charset_is_accepted(runner: Runner, content_type: str):
    answer = runner.client.simulate_post("/tasks/submit", body=json.dumps(BODY),
                                         headers={"Content-Type": content_type})
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("path", ["/tasks/submit", "/tasks", "/tasks/t1/messages", "/tasks/t1/cancel",
                                  "/tasks/t1/close", "/no/such/route"])
def test_a_body_without_the_json_type_is_415_on_every_route(runner: Runner, path: str):
    for headers in ({}, {"Content-Type": "text/plain"}):
        answer = runner.client.simulate_post(path, body=json.dumps(BODY), headers=headers)
        assert answer.status_code == 415, (path, headers, answer.text)
    assert runner.client.simulate_get("/tasks").json["count"] == 0


def test_a_post_without_a_body_needs_no_content_type(runner: Runner):
    assert post(runner, {}).status_code == 202
    assert runner.client.simulate_post("/tasks/t1/cancel").status_code == 200


def raw(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_original_control_planes_requests_work_unchanged(tmp_path: Path, receiver: CallbackReceiver):
    """The seed's client: JSON with its content type, no token, no Origin, Host 127.0.0.1:PORT, a callback URL;
    it hears running and success. Sent byte for byte over a socket to the real service with its defaults."""
    process, base = start_service(tmp_path)
    port = int(base.rsplit(":", 1)[1])
    try:
        body = json.dumps({"task_id": "seed-1", "run_id": "run-1", "prompt": "hello from the control plane",
                           "execution_mode": "no-workspace", "status_callback_url": receiver.url,
                           "status_callback_token": "cb-token", "handoff_context": {"x": 1}}).encode()
        status, answer = raw(port, b"POST /tasks/submit HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() +
                             b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                             b"\r\nConnection: close\r\n\r\n" + body)
        assert status == 202, answer
        wait_for(lambda: [c.body["status"] for c in receiver.delivered("seed-1")] == ["running", "success"],
                 what="the running and success callbacks")
        assert all(call.headers.get("X-Runner-Token") == "cb-token" for call in receiver.delivered("seed-1"))
        status, answer = raw(port, b"GET /tasks/seed-1 HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() +
                             b"\r\nConnection: close\r\n\r\n")
        assert status == 200 and json.loads(answer)["stdout"] == "hello from the control plane"
        # The same service refuses a rebound name and a foreign page, also over a real socket.
        status, _ = raw(port, b"GET /tasks/seed-1 HTTP/1.1\r\nHost: attacker.example:" + str(port).encode() +
                        b"\r\nConnection: close\r\n\r\n")
        assert status == 403
        assert requests.post(f"{base}/tasks/submit", data=json.dumps({**json.loads(body), "task_id": "page"}),
                             headers={"Content-Type": "text/plain"}, timeout=10).status_code == 415
        assert requests.get(f"{base}/tasks/page", timeout=10).status_code == 404
    finally:
        assert stop_service(process) == 0


def test_allowed_hosts_reach_the_real_service(tmp_path: Path):
    """An orchestrator in a container reaches the host as host.docker.internal: the operator lists that name."""
    process, base = start_service(tmp_path, HOST_RUNNER_ALLOWED_HOSTS="host.docker.internal, runner.lan")
    try:
        for host, expected in (("host.docker.internal", 200), ("runner.lan:80", 200), ("evil.lan", 403)):
            answer = requests.get(f"{base}/tasks", headers={"Host": host}, timeout=10)
            assert answer.status_code == expected, (host, answer.text)
    finally:
        assert stop_service(process) == 0
