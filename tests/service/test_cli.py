"""The CLI (`python -m host_runner`, the `host-runner` script) against a real server it started itself."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest
import requests

from host_runner import __version__
from host_runner.client.api_client import Client
from host_runner.client.cli import main
from support.openapi_check import validate
from support.paths import FAKE_BIN, REPO
from support.receivers import CallbackReceiver
from support.service import free_port
from support.waiting import wait_for

TOKEN = "cli-token"
TASK_SCRIPT = """\
echo "out: $HOST_RUNNER_PROMPT"
echo "err: $HOST_RUNNER_TASK_ID" >&2
case "$HOST_RUNNER_PROMPT" in
  block*) while [ ! -e "$GATES/$HOST_RUNNER_TASK_ID" ]; do sleep 0.05; done; echo released ;;
  exit*) exit "${HOST_RUNNER_PROMPT#exit }" ;;
esac
"""


@dataclass
class Server:
    url: str
    cwd: Path
    gates: Path
    process: subprocess.Popen

    def env(self, token: str | None = TOKEN) -> dict[str, str]:
        env = dict(os.environ, HOST_RUNNER_URL=self.url, PYTHONPATH=str(REPO))
        env.pop("HOST_RUNNER_API_TOKEN", None)
        if token:
            env["HOST_RUNNER_API_TOKEN"] = token
        return env

    def cli(self, *args: str, token: str | None = TOKEN, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the CLI as a user would, from a directory outside the checkout."""
        return subprocess.run([sys.executable, "-m", "host_runner", *args], cwd=self.cwd, env=self.env(token),
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "host_runner", *args], cwd=self.cwd, env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def release(self, task_id: str) -> None:
        (self.gates / task_id).touch()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`host-runner serve` started from a scratch directory (no HOST_RUNNER_DATA_DIR: ./.host-runner there)."""
    cwd = tmp_path_factory.mktemp("cli")
    gates = cwd / "gates"
    gates.mkdir()
    (cwd / "task.sh").write_text(TASK_SCRIPT)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), HOST_RUNNER_API_TOKEN=TOKEN, HOST_RUNNER_EXECUTOR="shell",
               HOST_RUNNER_ALLOWED_EXECUTORS="shell,agent",
               HOST_RUNNER_CMD_TEMPLATE=f"sh {cwd / 'task.sh'}", GATES=str(gates),
               HOST_RUNNER_AGENT_CMD=shlex.join([sys.executable, str(FAKE_BIN / "fake-agent-runner")]))
    env.pop("HOST_RUNNER_DATA_DIR", None)
    log = open(cwd / "serve.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "host_runner", "serve", "--bind", f"127.0.0.1:{port}"],
                               cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=1).ok
        except requests.RequestException:
            assert process.poll() is None, (cwd / "serve.log").read_text()
            return False

    wait_for(healthy, timeout=30, what="host-runner serve to answer")
    server = Server(url, cwd, gates, process)
    try:
        yield server
    finally:
        for name in ("c-cancel", "c-actors", "c-inproc"):
            server.release(name)  # let any task a failed test left blocked end
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
        log.close()
    assert (cwd / ".host-runner" / "host_runner.db").exists(), "the data directory is relative to where serve ran"


def test_submit_wait_exits_with_the_tasks_exit_code_and_shows_progress(server: Server):
    failed = server.cli("submit", "--task-id", "c-exit", "--prompt", "exit 3", "--wait", "--interval", "0.1")
    assert failed.returncode == 3, failed.stderr
    assert "c-exit" in failed.stderr and "failed: exited with code 3" in failed.stderr
    assert "exit code  3" in failed.stdout and "out: exit 3" in failed.stdout
    ok = server.cli("--json", "submit", "--task-id", "c-ok", "--prompt", "fine", "--wait")
    assert ok.returncode == 0, ok.stderr
    record = json.loads(ok.stdout)
    assert record["status"] == "success" and record["stdout"] == "out: fine\n"


def test_status_list_and_logs(server: Server):
    assert server.cli("submit", "--task-id", "c-logs", "--run-id", "r1", "--prompt", "hello", "--wait").returncode == 0
    status = server.cli("--json", "status", "c-logs")
    assert status.returncode == 0 and json.loads(status.stdout)["run_id"] == "r1"
    human = server.cli("status", "c-logs").stdout
    assert "status     success" in human and "--- stdout (last lines) ---\nout: hello" in human
    listing = server.cli("list", "--status", "success").stdout.splitlines()
    assert listing[0].split() == ["TASK", "RUN", "STATUS", "EXIT", "EXECUTOR", "CREATED", "MESSAGE"]
    assert any(line.split()[:3] == ["c-logs", "r1", "success"] for line in listing[1:])
    assert server.cli("logs", "c-logs").stdout == "out: hello\n"
    assert server.cli("logs", "c-logs", "--stream", "stderr").stdout == "err: c-logs\n"
    assert server.cli("logs", "c-logs", "--offset", "5").stdout == "hello\n"


def test_status_shows_the_callback_states(server: Server):
    receiver = CallbackReceiver()
    try:
        receiver.responses = [503]
        server.cli("submit", "--task-id", "c-callback", "--run-id", "r1", "--prompt", "hi",
                   "--callback-url", receiver.url)
        wait_for(lambda: len(receiver.delivered("c-callback")) == 2, timeout=30)
        human = wait_for(lambda: "success: delivered" in (text := server.cli("status", "c-callback").stdout) and text,
                         timeout=30)
        assert "callback   #1 running: delivered (2 attempts, last error: HTTP 503)\n" in human
        assert "callback   #2 success: delivered (1 attempt)\n" in human
    finally:
        receiver.close()


def test_submit_from_a_json_file_with_flags_on_top(server: Server):
    body = server.cwd / "body.json"
    body.write_text(json.dumps({"task_id": "c-file", "run_id": "from-file", "prompt": "from the file",
                                "handoff_context": {"ignored": True}}))
    result = server.cli("--json", "submit", "--file", str(body), "--run-id", "from-flag", "--wait")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["task_id"], record["run_id"], record["stdout"]) == ("c-file", "from-flag", "out: from the file\n")
    again = server.cli("submit", "--file", str(body), "--run-id", "from-flag")
    assert "already submitted" in again.stderr


def test_logs_follow_streams_until_cancel_ends_the_task(server: Server):
    assert server.cli("submit", "--task-id", "c-cancel", "--prompt", "block").returncode == 0
    follower = server.popen("logs", "c-cancel", "--follow")
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"out: block\n"  # printed while the task runs
        canceled = server.cli("cancel", "c-cancel")
        assert canceled.returncode == 0 and "status     canceled" in canceled.stdout
        assert follower.wait(timeout=30) == 0
        assert follower.stdout.read() == b""  # nothing after the cancel, and the follow ended by itself
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert json.loads(server.cli("--json", "status", "c-cancel").stdout)["message"] == "canceled by api"


def test_actors_shows_the_running_task_with_its_pid(server: Server):
    assert server.cli("submit", "--task-id", "c-actors", "--prompt", "block").returncode == 0
    record = wait_for(lambda: (r := json.loads(server.cli("--json", "status", "c-actors").stdout))["pid"] and r)
    table = server.cli("actors").stdout
    row = next(line for line in table.splitlines() if line.startswith("TaskActor") and "c-actors" in line)
    assert f"pid {record['pid']}" in row and "running" in row
    assert any(line.startswith("SupervisorActor") for line in table.splitlines())
    report = json.loads(server.cli("--json", "actors").stdout)
    assert report["not_answering"] == []
    server.release("c-actors")
    final = server.cli("submit", "--task-id", "c-actors", "--run-id", record["run_id"], "--prompt", "block", "--wait")
    assert final.returncode == 0 and "already submitted" in final.stderr


def test_errors_exit_1_with_a_message(server: Server):
    missing = server.cli("status", "no-such-task")
    assert missing.returncode == 1 and "404 Not Found: no task no-such-task" in missing.stderr
    unauthorized = server.cli("list", token="wrong")
    assert unauthorized.returncode == 1 and "401" in unauthorized.stderr
    invalid = server.cli("submit", "--task-id=-bad", "--prompt", "p")
    assert invalid.returncode == 1 and "task_id" in invalid.stderr
    unreachable = subprocess.run([sys.executable, "-m", "host_runner", "--url", "http://127.0.0.1:9", "list"],
                                 cwd=server.cwd, env=server.env(), capture_output=True, text=True, timeout=30)
    assert unreachable.returncode == 1 and "cannot reach the runner" in unreachable.stderr
    usage = server.cli("submit", "--wait")
    assert usage.returncode != 0 and "prompt" in usage.stderr


def test_the_client_options_come_before_or_after_the_command(server: Server, tmp_path: Path):
    assert server.cli("submit", "--task-id", "c-after", "--prompt", "after", "--wait").returncode == 0
    unreachable = "http://127.0.0.1:9"
    after = server.cli("status", "c-after", "--url", server.url, "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["stdout"] == "out: after\n"
    # Given after the command, an option wins over the same one given before it (and over the environment).
    assert server.cli("--url", unreachable, "list", "--url", server.url).returncode == 0
    before = server.cli("--url", unreachable, "list")
    assert before.returncode == 1 and "cannot reach the runner at http://127.0.0.1:9" in before.stderr
    # The token from a file (its path on the command line, never the token itself), by the runner's rules.
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    token_file.chmod(0o600)
    with_file = server.cli("list", "--token-file", str(token_file), token=None)
    assert with_file.returncode == 0 and "c-after" in with_file.stdout, with_file.stderr
    assert server.cli("list", token=None).returncode == 1  # the file it was, not a token left in the environment
    token_file.chmod(0o644)
    refused = server.cli("--token-file", str(token_file), "list", token=None)
    assert refused.returncode == 1 and f"--token-file {token_file}: other users may read it" in refused.stderr
    version = server.cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"host-runner {__version__}"


def test_the_cli_in_process_sees_only_documented_responses(server: Server):
    """The same commands through a client whose every response is checked against the OpenAPI document."""
    client = Client(server.url, TOKEN, on_response=validate)

    def run(*args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), out=out, err=err, client=client)
        return code, out.getvalue() + err.getvalue()

    assert run("submit", "--task-id", "c-inproc", "--prompt", "block")[0] == 0
    assert run("actors")[0] == 0 and run("--json", "actors")[0] == 0
    assert run("threads")[0] == 0 and run("--json", "threads")[0] == 0
    code, text = run("metrics")
    assert code == 0 and "host_runner_tasks_running" in text
    server.release("c-inproc")
    code, text = run("logs", "c-inproc", "--follow")
    assert code == 0 and text == "out: block\nreleased\n"
    assert run("list", "--limit", "3")[0] == 0 and run("status", "c-inproc")[0] == 0
    assert run("cancel", "c-inproc")[0] == 0
    assert run("status", "nope") == (1, "host-runner: 404 Not Found: no task nope\n")


def test_an_agent_task_through_the_cli(server: Server):
    client = Client(server.url, TOKEN)
    submitted = server.cli("submit", "--task-id", "c-agent", "--prompt", "frames:1 loop", "--executor", "agent",
                           "--group", "cli-group", "--session-id", "s-1")
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: client.get("c-agent").get("frames", 0) >= 2, what="the agent's first answer")
    sent = server.cli("message", "c-agent", "hello from the cli")
    assert sent.returncode == 0 and sent.stdout.strip().endswith(".json"), sent.stderr
    wait_for(lambda: client.get("c-agent").get("frames", 0) >= 4, what="the agent's echo")
    status = server.cli("status", "c-agent").stdout
    assert "group      cli-group" in status and "--- last result ---\necho: hello from the cli" in status
    closed = server.cli("--json", "close", "c-agent")
    assert closed.returncode == 0 and json.loads(closed.stdout)["closing"] is True
    assert client.wait("c-agent", timeout=30, interval=0.1)["status"] == "success"
    refused = server.cli("message", "c-agent", "too late")
    assert refused.returncode == 1 and "409" in refused.stderr


def test_the_console_script_entry_point_exists():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["scripts"]["host-runner"]
    module, _, function = target.partition(":")
    assert callable(getattr(import_module(module), function))
    requirements = (REPO / "requirements.txt").read_text()
    for dependency in project["project"]["dependencies"]:
        name = dependency.split(">")[0].split("=")[0].split("<")[0]
        assert f"{name}==" in requirements, f"{name} is in pyproject.toml but not pinned in requirements.txt"


def test_events_lists_and_follows_the_event_stream(server: Server):
    assert server.cli("submit", "--task-id", "c-events", "--prompt", "block").returncode == 0
    follower = server.popen("events", "--follow", "--task-id", "c-events", "--json")
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["event"] == "status" and first["data"]["task_id"] == "c-events"
        assert first["data"]["status"] == "queued"
        assert json.loads(follower.stdout.readline())["data"]["status"] == "running"
        server.release("c-events")
        ended = json.loads(follower.stdout.readline())
        assert ended["data"]["status"] == "success" and ended["id"] > first["id"]
    finally:
        follower.kill()
        follower.wait()
    listed = server.cli("events", "--task-id", "c-events", "--status", "success")
    assert listed.returncode == 0
    fields = listed.stdout.strip().split("\t")
    assert fields[1:3] == ["status", "c-events"] and fields[4] == "success" and int(fields[0]) > 0
    assert server.cli("events", "--status", "nope").returncode == 2  # a usage error
