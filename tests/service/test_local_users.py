"""Other users of the machine: they can neither drive the runner through its unix socket nor read what it keeps.

These tests start the real gunicorn service as root (as CI runs) and then look from the side of user ``nobody``
(``setpriv`` drops to uid/gid 65534 with no supplementary groups). Everything they look at lies in a directory
that every user may traverse, so only the runner's own modes stand in the way.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.paths import REPO
from support.service import GUNICORN, start_service, stop_service
from support.waiting import wait_for

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user (unlike a venv or pyenv under /root)


def require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the local-user tests need root (to act as another user)")
        pytest.skip("the local-user tests need root (to act as another user)")


def as_user(uid: int, gid: int, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` as ``uid``/``gid`` without supplementary groups; it prints what it could do."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", SYSTEM_PYTHON, "-c",
                           code, *args], capture_output=True, text=True, timeout=30, cwd="/")


CONNECT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
    sock.sendall(b"GET /tasks HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    print("answered", sock.recv(100).split(b"\\r\\n")[0].decode())
except OSError as exc:
    print("refused", exc.strerror)
"""

READ = """
import sys
for path in sys.argv[1:]:
    try:
        open(path, "rb").read(1)
        print("read", path)
    except OSError as exc:
        print("refused", exc.strerror, path)
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (unlike pytest's tmp_path), so that only the runner's modes protect."""
    require_root()
    path = Path(tempfile.mkdtemp(prefix="host-runner-users-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start_on_socket(directory: Path, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    socket_path = directory / "runner.sock"
    environment = dict(os.environ, HOST_RUNNER_BIND=f"unix:{socket_path}", HOST_RUNNER_DATA_DIR=str(directory / "data"),
                       **env)
    log = open(directory / "gunicorn.log", "ab")
    process = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                               env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def answering() -> bool:
        assert process.poll() is None, (directory / "gunicorn.log").read_text()
        return unix_request(socket_path, "GET", "/health")[0] == 200

    wait_for(answering, timeout=30, what="gunicorn to answer on its socket")
    return process, socket_path


def unix_request(path: Path, method: str, target: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(20)
            sock.connect(str(path))
            sock.sendall(head.encode() + b"\r\n" + data)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        return 0, b""
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_the_unix_socket_is_the_runner_users_alone(shared_dir: Path):
    process, socket_path = start_on_socket(shared_dir)
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        attempt = as_user(NOBODY, NOBODY, CONNECT, str(socket_path))
        assert attempt.stdout.startswith("refused Permission denied"), attempt
        # The runner's own user is served as before.
        status, body = unix_request(socket_path, "POST", "/tasks/submit",
                                    {"task_id": "mine", "run_id": "r1", "prompt": "hi"})
        assert status == 202, body
    finally:
        assert stop_service(process) == 0


def test_a_socket_group_may_connect_and_nobody_else(shared_dir: Path):
    group = grp.getgrgid(NOBODY).gr_name  # nogroup: nobody's own primary group
    process, socket_path = start_on_socket(shared_dir, HOST_RUNNER_SOCKET_GROUP=group)
    try:
        info = socket_path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, NOBODY)
        member = as_user(NOBODY, NOBODY, CONNECT, str(socket_path))
        assert member.stdout.startswith("answered HTTP/1.0 200"), member
        other = as_user(NOBODY, 1, CONNECT, str(socket_path))  # the same uid in another group: not the owner
        assert other.stdout.startswith("refused Permission denied"), other
    finally:
        assert stop_service(process) == 0


def test_another_user_reads_nothing_of_the_data_dir(shared_dir: Path, tmp_path: Path):
    process, socket_path = start_on_socket(shared_dir, HOST_RUNNER_EXECUTOR="shell",
                                           HOST_RUNNER_CMD_TEMPLATE="sh -c 'echo \"$HOST_RUNNER_PROMPT\"'")
    data = shared_dir / "data"
    try:
        status, body = unix_request(socket_path, "POST", "/tasks/submit", {
            "task_id": "secret", "run_id": "r1", "prompt": "the secret prompt",
            "status_callback_url": "http://127.0.0.1:9/cb", "status_callback_token": "callback-token-x"})
        assert status == 202, body
        wait_for(lambda: json.loads(unix_request(socket_path, "GET", "/tasks/secret")[1])["status"] == "success",
                 what="the task to end")
        # While the service runs, the WAL holds the newest rows (prompt, callback token and URL among them).
        files = sorted(path for path in data.rglob("*"))
        assert data / "host_runner.db-wal" in files and data / "runs" / "secret" / "r1" / "stdout.log" in files
        for path in [data, *files]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink():
                continue
            assert mode & 0o077 == 0, f"{path} has mode {mode:04o}"
        attempt = as_user(NOBODY, NOBODY, READ, *(str(path) for path in files if path.is_file()))
        assert attempt.stdout and "read " not in attempt.stdout, attempt
        # Directly, too: even files that would be readable by themselves are behind the owner-only data dir.
        listing = as_user(NOBODY, NOBODY, "import os, sys\ntry:\n print(os.listdir(sys.argv[1]))\n"
                          "except OSError as e:\n print('refused', e.strerror)", str(data))
        assert listing.stdout.startswith("refused Permission denied"), listing
    finally:
        assert stop_service(process) == 0


def test_an_old_world_readable_data_dir_is_narrowed(shared_dir: Path):
    data = shared_dir / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    process, _ = start_on_socket(shared_dir)
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        assert stop_service(process) == 0
    assert "narrowing it to 0700" in (shared_dir / "gunicorn.log").read_text()


def test_files_a_task_creates_keep_the_users_umask(tmp_path: Path):
    """The runner's files are private, but what a task makes in the user's project is the user's: umask 022 gives
    0644 files and 0755 directories there, as without the runner."""
    project = tmp_path / "project"
    project.mkdir()
    old = os.umask(0o022)  # the service inherits the umask it is started with
    try:
        process, base = start_service(tmp_path, HOST_RUNNER_EXECUTOR="shell",
                                      HOST_RUNNER_CMD_TEMPLATE=f"sh -c 'mkdir {project}/made && touch {project}/made/f'")
    finally:
        os.umask(old)
    try:
        import requests

        answer = requests.post(f"{base}/tasks/submit", json={"task_id": "t", "run_id": "r", "prompt": "p"}, timeout=10)
        assert answer.status_code == 202
        wait_for(lambda: requests.get(f"{base}/tasks/t", timeout=10).json()["status"] == "success", what="the task")
        assert stat.S_IMODE((project / "made").stat().st_mode) == 0o755
        assert stat.S_IMODE((project / "made" / "f").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "data" / "runs" / "t" / "r" / "stdout.log").stat().st_mode) == 0o600
    finally:
        assert stop_service(process) == 0


# --- the token file ----------------------------------------------------------------------------------------------
def start_failing(tmp_path: Path, **env: str) -> tuple[int, str]:
    environment = {name: value for name, value in os.environ.items() if name != "HOST_RUNNER_API_TOKEN"}
    environment.update(HOST_RUNNER_DATA_DIR=str(tmp_path / "data"), **env)
    done = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf.py", "api.app:create_app()"], cwd=REPO,
                          env=environment, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


def test_a_token_file_others_may_read_is_refused(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    token_file.chmod(0o644)
    code, stderr = start_failing(tmp_path, HOST_RUNNER_API_TOKEN_FILE=str(token_file), HOST_RUNNER_BIND="127.0.0.1:1")
    assert code != 0 and "HOST_RUNNER_API_TOKEN_FILE" in stderr and "chmod 600" in stderr, stderr
    token_file.chmod(0o600)
    code, stderr = start_failing(tmp_path, HOST_RUNNER_API_TOKEN_FILE=str(token_file),
                                 HOST_RUNNER_API_TOKEN="also-set", HOST_RUNNER_BIND="127.0.0.1:1")
    assert code != 0 and "not both" in stderr, stderr


def test_a_token_file_turns_auth_on_for_the_runner_the_cli_and_the_client(tmp_path: Path):
    import requests

    from host_runner.client.api_client import Client

    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    token_file.chmod(0o600)
    process, base = start_service(tmp_path, HOST_RUNNER_API_TOKEN_FILE=str(token_file))
    try:
        assert requests.get(f"{base}/tasks", timeout=10).status_code == 401
        assert requests.get(f"{base}/tasks", headers={"Authorization": "Bearer file-token"},
                            timeout=10).status_code == 200
        env = {key: value for key, value in os.environ.items() if key != "HOST_RUNNER_API_TOKEN"}
        env.update(HOST_RUNNER_URL=base, HOST_RUNNER_API_TOKEN_FILE=str(token_file), PYTHONPATH=str(REPO))
        submitted = subprocess.run([sys.executable, "-m", "host_runner", "submit", "--task-id", "cli-1", "--prompt",
                                    "hi", "--wait"], env=env, capture_output=True, text=True, timeout=60)
        assert submitted.returncode == 0, submitted.stderr
        os.environ["HOST_RUNNER_API_TOKEN_FILE"] = str(token_file)
        try:
            os.environ.pop("HOST_RUNNER_API_TOKEN", None)
            assert Client(base).get("cli-1")["status"] == "success"
        finally:
            del os.environ["HOST_RUNNER_API_TOKEN_FILE"]
        missing = subprocess.run([sys.executable, "-m", "host_runner", "list"],
                                 env={**env, "HOST_RUNNER_API_TOKEN_FILE": str(tmp_path / "nope")},
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "HOST_RUNNER_API_TOKEN_FILE=" in missing.stderr, missing.stderr
    finally:
        assert stop_service(process) == 0
