"""With HOST_RUNNER_API_TOKEN set, every route except /health needs the bearer token."""

from __future__ import annotations

import pytest

from host_runner.ops.config import ConfigError, load_config

ROUTES = [
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("POST", "/tasks/submit"),
    ("GET", "/tasks/x"),
    ("POST", "/tasks/x/cancel"),
    ("GET", "/tasks/x/logs"),
    ("GET", "/debug/actors"),
    ("GET", "/debug/threads"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/nowhere"),
]


@pytest.fixture
def secured(make_runner):
    return make_runner(api_token="correct-horse")


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer correct-hors", "Basic correct-horse", "correct-horse"])
def test_requests_without_the_right_token_are_401(secured, method, path, header):
    headers = {"Authorization": header} if header else {}
    result = secured.client.simulate_request(method, path, headers=headers, json={})
    assert result.status_code == 401
    assert "Bearer" in result.json["detail"]
    assert "correct-horse" not in result.text


def test_health_is_open_and_the_token_lets_requests_in(secured):
    assert secured.client.simulate_get("/health").json == {"status": "ok", "disk": "ok"}
    result = secured.submit(task_id="authed")
    assert result.status_code == 202
    assert secured.wait_status("authed", "success")["stdout"] == "hello"


def test_non_loopback_bind_without_token_refuses_to_start():
    with pytest.raises(ConfigError, match="HOST_RUNNER_API_TOKEN"):
        load_config({"HOST_RUNNER_BIND": "0.0.0.0:8765"})
    assert load_config({"HOST_RUNNER_BIND": "0.0.0.0:8765", "HOST_RUNNER_API_TOKEN": "t"}).api_token == "t"
    assert load_config({"HOST_RUNNER_BIND": "[::1]:8765"}).bind == "[::1]:8765"
    assert load_config({"HOST_RUNNER_BIND": "localhost:1"}).bind == "localhost:1"


@pytest.mark.parametrize("name,value", [
    ("HOST_RUNNER_EXECUTOR", "docker"),
    ("HOST_RUNNER_MAX_CONCURRENCY", "0"),
    ("HOST_RUNNER_MAX_CONCURRENCY", "many"),
    ("HOST_RUNNER_KILL_GRACE_SECONDS", "-1"),
    ("HOST_RUNNER_CLEANUP_WORKTREE", "maybe"),
    ("HOST_RUNNER_CMD_TEMPLATE", "echo 'unbalanced"),
    ("HOST_RUNNER_LOG_LEVEL", "LOUD"),
    ("HOST_RUNNER_LOG_FORMAT", "xml"),
    ("HOST_RUNNER_LOG_PROMPTS", "sometimes"),
    ("HOST_RUNNER_MAX_LOG_FOLLOWERS", "-1"),
    ("HOST_RUNNER_HEADER_TIMEOUT_SECONDS", "0"),
    ("HOST_RUNNER_HEADER_TIMEOUT_SECONDS", "301"),
    ("HOST_RUNNER_HEADER_TIMEOUT_SECONDS", "soon"),
    ("HOST_RUNNER_ALLOWED_HOSTS", "http://evil.example/"),
    ("HOST_RUNNER_ALLOWED_HOSTS", "a b"),
    ("HOST_RUNNER_SOCKET_GROUP", "no-such-group-xyz"),
    ("HOST_RUNNER_SOCKET_GROUP", "0"),  # a real group, but the bind is TCP
    ("HOST_RUNNER_API_TOKEN_FILE", "/nonexistent/token"),
    ("HOST_RUNNER_API_TOKEN_FILE", "/etc"),
])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})
