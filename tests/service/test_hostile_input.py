"""Hostile input, table-driven: every row is answered 4xx with a JSON body, nothing is executed (the runner's
shell template would touch a canary file) and nothing is created outside the data directory.

The world a row may attack is a directory beside the data dir: a git repository with a commit (``proj``), a
non-empty directory, a directory outside the project reached by a symlink, and the one root sandboxes may mount
from (holding a symlink to /etc). Before and after each row the whole tree outside the data dir is listed; it
must not change.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import pytest
import requests

from host_runner.domain.callback_hosts import parse_allowed_hosts
from host_runner.ops.config import DockerSettings
from support.runner import Runner
from support.service import start_service, stop_service
from support.waiting import wait_for

MIB = 1024 * 1024
NEVER_MOUNT = "sandboxes may never mount"


@dataclass
class World:
    root: Path
    canary: Path
    proj: Path
    outside: Path
    full: Path
    allowed: Path
    data: Path  # the runner's data directory (make_runner's default)


@dataclass
class Row:
    """One hostile request: ``body`` (a dict made from the world, or raw bytes) posted to ``path``; the answer
    must be ``status`` and, for 422, name ``field`` (and say ``detail`` when given)."""

    name: str
    body: Callable[[World], Any] | None
    status: int
    field: str | None = None
    path: str = "/tasks/submit"
    method: str = "POST"
    headers: dict[str, str | None] = dc_field(default_factory=dict)  # None: leave the header out
    detail: str | None = None


def make_world(tmp_path: Path) -> World:
    root = tmp_path / "world"
    proj = root / "proj"
    proj.mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(proj)], check=True)
    (proj / "README").write_text("hello\n")
    subprocess.run([*git, "-C", str(proj), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(proj), "commit", "-q", "-m", "one"], check=True)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    (proj / "escape").symlink_to(outside)
    full = root / "full"
    full.mkdir()
    (full / "keep").write_text("x")
    allowed = root / "allowed"
    allowed.mkdir()
    (allowed / "to-etc").symlink_to("/etc")  # inside the mount roots by name, /etc once resolved
    return World(root, tmp_path / "canary", proj, outside, full, allowed, tmp_path / "data")


def base(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"task_id": "t1", "run_id": "r1", "prompt": "hello"}
    body.update(changes)
    return body


def shared(w: World, *locks: str) -> dict[str, Any]:
    return base(execution_mode="shared-workspace",
                workspace={"project_root": str(w.proj), "lock_paths": list(locks)})


def worktree(w: World, path: str, branch: str = "feature") -> dict[str, Any]:
    return base(execution_mode="isolated-worktree",
                workspace={"project_root": str(w.proj), "worktree_path": path, "git_branch": branch})


def sandbox(source: str) -> dict[str, Any]:
    return base(execution_mode="docker-sandbox",
                sandbox={"image": "busybox:latest", "command": ["true"],
                         "mounts": [{"source": source, "target": "/data"}]})


def nested(depth: int) -> bytes:
    return b'{"task_id": "t1", "run_id": "r1", "prompt": "p", "x": ' + b"[" * depth + b"]" * depth + b"}"


ROWS = [
    # task ids and run ids become directory names and template values
    Row("task_id with a slash", lambda w: base(task_id="a/b"), 422, "task_id"),
    Row("task_id dot-dot", lambda w: base(task_id=".."), 422, "task_id"),
    Row("task_id climbing out", lambda w: base(task_id="../../../tmp/x"), 422, "task_id"),
    Row("task_id with NUL", lambda w: base(task_id="a\x00b"), 422, "task_id"),
    Row("task_id of 500 characters", lambda w: base(task_id="a" * 500), 422, "task_id"),
    Row("task_id with shell metacharacters", lambda w: base(task_id=f"x;touch {w.canary}"), 422, "task_id"),
    Row("task_id command substitution", lambda w: base(task_id=f"$(touch {w.canary})"), 422, "task_id"),
    Row("task_id that is an option", lambda w: base(task_id="-rf"), 422, "task_id"),
    Row("run_id climbing out", lambda w: base(run_id="../../etc"), 422, "run_id"),
    Row("run_id with backticks", lambda w: base(run_id=f"`touch {w.canary}`"), 422, "run_id"),
    # prompts: NUL, too long for an argv item, a 1 MiB string
    Row("prompt with NUL", lambda w: base(prompt="a\x00; touch canary"), 422, "prompt"),
    Row("prompt over the argv limit", lambda w: base(prompt="x" * 200_000), 422, "prompt"),
    Row("prompt of 1 MiB", lambda w: base(prompt="x" * MIB), 413),
    Row("lone surrogate prompt", lambda w: b'{"task_id": "t1", "run_id": "r1", "prompt": "\\ud800"}', 422, "prompt"),
    # numbers JSON should not have
    Row("timeout NaN", lambda w: b'{"task_id": "t1", "run_id": "r1", "prompt": "p", "timeout_seconds": NaN}', 422,
        "timeout_seconds"),
    Row("timeout infinite", lambda w: b'{"task_id": "t1", "run_id": "r1", "prompt": "p", "timeout_seconds": 1e999}',
        422, "timeout_seconds"),
    Row("execution_mode path", lambda w: base(execution_mode="../../bin/sh"), 422, "execution_mode"),
    # lock paths escaping the project
    Row("lock path escaping by ..", lambda w: shared(w, f"{w.proj}/../outside/secret"), 422,
        "workspace.lock_paths[0]"),
    Row("lock path escaping by a symlink", lambda w: shared(w, f"{w.proj}/escape/secret"), 422,
        "workspace.lock_paths[0]"),
    Row("lock path relative", lambda w: shared(w, "../outside"), 422, "workspace.lock_paths[0]"),
    Row("project_root relative", lambda w: base(execution_mode="shared-workspace",
                                               workspace={"project_root": "../..", "lock_paths": ["/x"]}),
        422, "workspace.project_root"),
    # worktrees: inside .git, over a non-empty directory, branch names git would read as options
    Row("worktree inside .git", lambda w: worktree(w, f"{w.proj}/.git/wt"), 422, "workspace.worktree_path"),
    Row("worktree inside .git by ..", lambda w: worktree(w, f"{w.proj}/sub/../.git/hooks/x"), 422,
        "workspace.worktree_path"),
    Row("worktree over a non-empty dir", lambda w: worktree(w, str(w.full)), 422, "workspace.worktree_path"),
    Row("worktree over the project", lambda w: worktree(w, str(w.proj)), 422, "workspace.worktree_path"),
    Row("branch --help", lambda w: worktree(w, f"{w.root}/wt1", "--help"), 422, "workspace.git_branch"),
    Row("branch -D", lambda w: worktree(w, f"{w.root}/wt2", "-D"), 422, "workspace.git_branch"),
    Row("branch --upload-pack", lambda w: worktree(w, f"{w.root}/wt3", f"--upload-pack=touch {w.canary}"), 422,
        "workspace.git_branch"),
    Row("branch with ..", lambda w: worktree(w, f"{w.root}/wt4", "a..b"), 422, "workspace.git_branch"),
    Row("branch with NUL", lambda w: worktree(w, f"{w.root}/wt5", "a\x00b"), 422, "workspace.git_branch"),
    # sandbox mounts
    Row("mount of /", lambda w: sandbox("/"), 422, "sandbox.mounts[0].source"),
    Row("mount of / by ..", lambda w: sandbox(f"{w.allowed}/../../../../../../.."), 422, "sandbox.mounts[0].source"),
    Row("mount of the docker socket", lambda w: sandbox("/var/run/docker.sock"), 422, "sandbox.mounts[0].source"),
    Row("mount of the dir with the docker socket", lambda w: sandbox("/run"), 422, "sandbox.mounts[0].source"),
    Row("mount outside the mount roots", lambda w: sandbox(str(w.outside)), 422, "sandbox.mounts[0].source"),
    Row("mount escaping the roots by ..", lambda w: sandbox(f"{w.allowed}/../outside"), 422,
        "sandbox.mounts[0].source"),
    # ... and what is refused whatever the mount roots say (the detail says so, not "outside the roots")
    Row("mount of /etc", lambda w: sandbox("/etc"), 422, "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of a file in /etc", lambda w: sandbox("/etc/passwd"), 422, "sandbox.mounts[0].source",
        detail=NEVER_MOUNT),
    Row("mount of /usr/bin", lambda w: sandbox("/usr/bin"), 422, "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of /var (holds /var/run)", lambda w: sandbox("/var"), 422, "sandbox.mounts[0].source",
        detail=NEVER_MOUNT),
    Row("mount of /var/run", lambda w: sandbox("/var/run"), 422, "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of /proc", lambda w: sandbox("/proc"), 422, "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of the data dir", lambda w: sandbox(str(w.data)), 422, "sandbox.mounts[0].source",
        detail=NEVER_MOUNT),
    Row("mount of the data dir's database", lambda w: sandbox(str(w.data / "host_runner.db")), 422,
        "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of a parent of the data dir", lambda w: sandbox(str(w.data.parent)), 422,
        "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of a symlink to /etc in the roots", lambda w: sandbox(f"{w.allowed}/to-etc"), 422,
        "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("mount of /etc by .. from the roots", lambda w: sandbox(f"{w.allowed}/{'../' * 20}etc"), 422,
        "sandbox.mounts[0].source", detail=NEVER_MOUNT),
    Row("sandbox command that is an option", lambda w: base(execution_mode="docker-sandbox", sandbox={
        "image": "busybox", "command": ["--privileged"]}), 422, "sandbox.command[0]"),
    Row("sandbox image that is an option", lambda w: base(execution_mode="docker-sandbox", sandbox={
        "image": "--privileged", "command": ["true"]}), 422, "sandbox.image"),
    Row("sandbox privileged field", lambda w: base(execution_mode="docker-sandbox", sandbox={
        "image": "busybox", "command": ["true"], "privileged": True}), 422, "sandbox.privileged"),
    # callback URLs with other schemes
    Row("callback file://", lambda w: base(status_callback_url="file:///etc/passwd"), 422, "status_callback_url"),
    Row("callback gopher://", lambda w: base(status_callback_url="gopher://127.0.0.1:25/x"), 422,
        "status_callback_url"),
    Row("callback javascript:", lambda w: base(status_callback_url="javascript:alert(1)"), 422,
        "status_callback_url"),
    Row("callback without host", lambda w: base(status_callback_url="http:///x"), 422, "status_callback_url"),
    Row("callback bad port", lambda w: base(status_callback_url="http://127.0.0.1:99999/x"), 422,
        "status_callback_url"),
    Row("callback with header injection", lambda w: base(status_callback_url="http://127.0.0.1/\r\nX-Evil: 1"),
        422, "status_callback_url"),
    # callback hosts outside HOST_RUNNER_CALLBACK_ALLOWED_HOSTS (the runner below allows 127.0.0.1, ::1 and
    # orch.internal): callbacks must not probe the network for the client
    Row("callback host hidden behind a backslash", lambda w: base(
        status_callback_url="http://169.254.169.254:80\\@orch.internal/cb"), 422, "status_callback_url"),
    Row("callback host with characters no DNS name has", lambda w: base(
        status_callback_url="http://orch.internal%22x/"), 422, "status_callback_url"),
    Row("callback to the cloud metadata address", lambda w: base(
        status_callback_url="http://169.254.169.254/latest/meta-data/"), 422, "status_callback_url"),
    Row("callback to an unlisted name", lambda w: base(status_callback_url="http://db.internal:5432/"), 422,
        "status_callback_url"),
    Row("callback to a listed name as a prefix", lambda w: base(
        status_callback_url="http://orch.internal.evil.example/"), 422, "status_callback_url"),
    Row("callback to another loopback port owner", lambda w: base(status_callback_url="http://127.0.0.2:22/"),
        422, "status_callback_url"),
    Row("callback to loopback written as one number", lambda w: base(status_callback_url="http://2130706433:22/"),
        422, "status_callback_url"),
    Row("callback to loopback written short", lambda w: base(status_callback_url="http://127.1:22/"), 422,
        "status_callback_url"),
    Row("callback to an IPv4-mapped address", lambda w: base(
        status_callback_url="http://[::ffff:169.254.169.254]/"), 422, "status_callback_url"),
    Row("callback to an unlisted IPv6 address", lambda w: base(status_callback_url="http://[fd00::1]:80/"), 422,
        "status_callback_url"),
    Row("callback with user info dressed as the host", lambda w: base(
        status_callback_url="http://127.0.0.1@10.0.0.1/"), 422, "status_callback_url"),
    # bodies that are not what they claim
    Row("deeply nested array", lambda w: b"[" * 100_000, 400),
    Row("deeply nested object", lambda w: b'{"a": ' * 100_000, 400),
    Row("deeply nested field", lambda w: nested(50_000), 400),
    Row("not an object", lambda w: b"[1, 2]", 422, "body"),
    Row("invalid UTF-8", lambda w: b'{"task_id": "\xff\xfe", "run_id": "r", "prompt": "p"}', 400),
    Row("truncated JSON", lambda w: json.dumps(base()).encode()[:-5], 400),
    Row("empty body", lambda w: b"", 400),
    Row("wrong content type text/plain", lambda w: json.dumps(base()).encode(), 415,
        headers={"Content-Type": "text/plain"}),
    Row("wrong content type form", lambda w: b"task_id=t1&run_id=r1&prompt=p", 415,
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
    # what a web page can send without a CORS preflight (fetch no-cors with a Blob, sendBeacon, a form)
    Row("no content type", lambda w: json.dumps(base()).encode(), 415, headers={"Content-Type": None}),
    Row("text/plain with a charset", lambda w: json.dumps(base()).encode(), 415,
        headers={"Content-Type": "text/plain;charset=UTF-8"}),
    Row("multipart form", lambda w: json.dumps(base()).encode(), 415,
        headers={"Content-Type": "multipart/form-data; boundary=x"}),
    Row("JSON look-alike type", lambda w: json.dumps(base()).encode(), 415,
        headers={"Content-Type": "application/jsonx"}),
    # browsers: other origins, other sites, DNS rebinding (a name of the attacker's resolving to 127.0.0.1)
    Row("foreign Origin", lambda w: base(), 403, headers={"Origin": "http://attacker.example"}),
    Row("Origin of another port", lambda w: base(), 403, headers={"Origin": "http://127.0.0.1:1"}),
    Row("opaque Origin null", lambda w: base(), 403, headers={"Origin": "null"}),
    Row("Sec-Fetch-Site cross-site", lambda w: base(), 403, headers={"Sec-Fetch-Site": "cross-site"}),
    Row("Sec-Fetch-Site same-site", lambda w: base(), 403, headers={"Sec-Fetch-Site": "same-site"}),
    Row("rebound Host", lambda w: base(), 403, headers={"Host": "attacker.example:8765"}),
    Row("rebound Host reading", None, 403, path="/tasks", method="GET", headers={"Host": "attacker.example"}),
    Row("rebound Host on the dashboard", None, 403, path="/ui", method="GET", headers={"Host": "rebind.example"}),
    Row("cancel from a foreign Origin", None, 403, path="/tasks/t1/cancel", headers={"Origin": "http://a.example"}),
    Row("preflight from a foreign Origin", None, 403, method="OPTIONS",
        headers={"Origin": "http://a.example", "Access-Control-Request-Method": "POST"}),
    # executors the operator did not allow (this runner allows only its default, shell)
    Row("executor codex not allowed", lambda w: base(executor="codex"), 422, "executor"),
    Row("executor agent not allowed", lambda w: base(executor="agent", group="g"), 422, "executor"),
    # ids in the URL never become paths
    Row("GET task ../..", None, 404, path="/tasks/..%2F..%2Fetc%2Fpasswd", method="GET"),
    Row("GET task NUL", None, 404, path="/tasks/a%00b", method="GET"),
    Row("GET logs of ../", None, 404, path="/tasks/..%2Fdata/logs", method="GET"),
    Row("cancel ../", None, 404, path="/tasks/..%2F..%2Fx/cancel"),
    Row("cancel 500 characters", None, 404, path="/tasks/" + "a" * 500 + "/cancel"),
]


def tree(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` except under ``skip`` (the data dir), as text."""
    found = set()
    for directory, subdirs, files in os.walk(root):
        if Path(directory) == skip:
            subdirs.clear()
            continue
        found.update(os.path.join(directory, name) for name in subdirs + files)
    return found


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture
def hostile_runner(make_runner: Callable[..., Runner], world: World) -> Runner:
    return make_runner(executor="shell", cmd_template=("sh", "-c", f"touch {world.canary}; echo ran", "task",
                                                       "{prompt}", "{task_id}"),
                       docker=DockerSettings(mount_roots=(str(world.allowed),), pull="never"),
                       callback_allowed_hosts=parse_allowed_hosts("127.0.0.1,::1,orch.internal"))


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_hostile_request_is_refused(hostile_runner: Runner, world: World, tmp_path: Path, row: Row):
    data_dir = hostile_runner.config.data_dir
    before = tree(tmp_path, data_dir)
    headers = {name: value for name, value in {"Content-Type": "application/json", **row.headers}.items()
               if value is not None}
    kwargs: dict[str, Any] = {"headers": headers}
    if row.body is not None:
        body = row.body(world)
        kwargs["body"] = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = hostile_runner.client.simulate_request(row.method, row.path, **kwargs)
    assert result.status_code == row.status, result.text
    assert result.headers["Content-Type"].startswith("application/json")
    error = result.json
    assert error["detail"] and "Traceback" not in result.text
    if row.field is not None:
        assert error["field"] == row.field, error
    if row.detail is not None:
        assert row.detail in error["detail"], error
    listing = hostile_runner.client.simulate_get("/tasks").json
    assert listing["count"] == 0, "a refused request must not create a task"
    assert not world.canary.exists(), "nothing may run"
    assert tree(tmp_path, data_dir) == before, "nothing may be created outside the data dir"


SHELL_TEXT = [
    "; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "| touch {canary}",
    "&& touch {canary} &",
    "'\"; touch {canary}; echo \"'",
    "\n touch {canary}\n",
    "{{prompt}} {{task_id}} $HOME ${{IFS}}touch${{IFS}}{canary}",
    "-c touch {canary}",
    "\\x00 \\u0000 %00",
]


@pytest.mark.parametrize("template", SHELL_TEXT)
def test_prompt_with_shell_metacharacters_is_data_not_code(make_runner: Callable[..., Runner], tmp_path: Path,
                                                           template: str):
    """A prompt is free text: shell metacharacters in it are accepted (refusing them would refuse real prompts)
    but arrive verbatim, as one argv item and in $HOST_RUNNER_PROMPT, and never run."""
    canary = tmp_path / "canary"
    prompt = template.format(canary=canary)
    runner = make_runner(executor="shell", cmd_template=(
        "sh", "-c", 'printf "%s|%s" "$1" "$HOST_RUNNER_PROMPT"', "task", "{prompt}"))
    result = runner.submit(task_id="meta", prompt=prompt)
    assert result.status_code == 202, result.text
    record = runner.wait_status("meta")
    assert record["status"] == "success", record
    assert record["stdout"] == f"{prompt}|{prompt}"
    assert not canary.exists()


def raw_request(port: int, head: bytes, body: bytes) -> bytes:
    """Send ``head`` and ``body`` over a real socket, close our side, and read whatever comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_truncated_bodies_over_a_real_socket(tmp_path: Path):
    """Content-Length larger than the body actually sent, then the client closes: the worker answers 400 (or
    nothing, the client being gone), runs nothing, and keeps serving."""
    canary = tmp_path / "canary"
    process, base_url = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                      HOST_RUNNER_CMD_TEMPLATE=f"sh -c 'touch {canary}'")
    port = int(base_url.rsplit(":", 1)[1])
    try:
        whole = json.dumps(base(task_id="cut")).encode()
        for sent in (b"", whole[:1], whole[: len(whole) // 2], whole):
            head = (b"POST /tasks/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(whole) + 100).encode() + b"\r\n\r\n")
            answer = raw_request(port, head, sent)
            if answer:
                status_line = answer.split(b"\r\n", 1)[0]
                status = int(status_line.split()[1])
                assert 400 <= status < 500, answer[:500]
                assert b"application/json" in answer
            assert requests.get(f"{base_url}/health", timeout=5).status_code == 200
        # a header block cut in the middle
        raw_request(port, b"POST /tasks/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le", b"")
        listing = requests.get(f"{base_url}/tasks", timeout=5).json()
        assert listing["count"] == 0
        assert not canary.exists()
        # and the service still takes a real submission
        good = requests.post(f"{base_url}/tasks/submit", json=base(task_id="after"), timeout=10)
        assert good.status_code == 202
        wait_for(lambda: requests.get(f"{base_url}/tasks/after", timeout=5).json()["status"] == "success",
                 timeout=20)
    finally:
        assert stop_service(process) == 0
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /tasks?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
    (b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    # a head over the 64 KiB the worker holds for one connection (api/gunicorn_worker.py), still unfinished
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000, 431),
    # ... and complete, each field within gunicorn's own limits
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: " % i + b"a" * 7000 + b"\r\n" for i in range(10))
     + b"\r\n", 431),
    # a bare LF: refused at once, not held until the header timeout
    (b"GET /health HTTP/1.1\nHost: x\n\n", 400),
])
def test_requests_gunicorn_refuses_itself_are_answered_in_json(tmp_path: Path, request_bytes: bytes, status: int):
    """gunicorn answers these before the application sees them; api/gunicorn_worker.py makes the answer JSON."""
    process, base_url = start_service(tmp_path)
    try:
        answer = raw_request(int(base_url.rsplit(":", 1)[1]), request_bytes, b"")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert int(head.split()[1]) == status, answer[:300]
        assert b"content-type: application/json" in head.lower()
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        error = json.loads(body[:length])  # a second answer may follow on a kept-alive connection
        assert error["error"] and error["detail"]
        for later in re.findall(rb"HTTP/1.1 (\d+) [^\r]*\r\n(?:[^\r]+\r\n)*", body[length:]):
            assert later.startswith(b"4")
        assert b"content-type: text/html" not in answer.lower()
        assert requests.get(f"{base_url}/health", timeout=5).status_code == 200
    finally:
        assert stop_service(process) == 0
