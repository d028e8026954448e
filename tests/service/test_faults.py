"""Faults: each ends in a clear recorded state, and the service keeps answering /health and new submits.

A callback receiver that hangs, resets connections or answers garbage; a child that closes its stdout early,
forks a daemon that leaves the process group (setsid), ignores SIGTERM, or exits at once; git failing while a
worktree is set up (a read-only repository, a stale lock); the data disk full (a small tmpfs as the data dir);
the Docker daemon stopped while a sandbox runs (a second dockerd of the test's own, on its own socket).
Mounts and the second dockerd need root, as CI runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from host_runner.run.stopping import group_alive
from support.docker import ensure_busybox_image, require_docker
from support.git_repos import make_repo
from support.receivers import CallbackReceiver
from support.runner import Runner, shell_runner
from support.waiting import wait_for


def still_serving(runner: Runner, task_id: str) -> None:
    """The service answers /health and runs a new submission to the end."""
    assert runner.client.simulate_get("/health").json == {"status": "ok", "disk": "ok"}
    # The mock executor: the runner's own command may be the fault under test (a loop that ignores SIGTERM).
    assert runner.submit(task_id=task_id, prompt="after", executor="mock").status_code == 202
    assert runner.wait_status(task_id)["status"] == "success"


class GarbageServer:
    """Accepts connections, reads a little, then answers ``reply`` (garbage, or nothing) and closes."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/callback"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    if self.reply:
                        conn.sendall(self.reply)
                    else:  # a reset: RST instead of FIN
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("reply", [b"", b"garbage\r\n\r\nnot http at all", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nx",
                                   b"\x00\xff" * 1000])
def test_a_callback_receiver_that_resets_or_answers_garbage(make_runner: Callable[..., Runner], reply: bytes):
    server = GarbageServer(reply)
    try:
        runner = make_runner(mock_seconds=0.05, callback_max_attempts=3, callback_backoff_seconds=0.02,
                             callback_timeout_seconds=1.0)
        assert runner.submit(task_id="cb", status_callback_url=server.url).status_code == 202
        assert runner.wait_status("cb")["status"] == "success"
        record = wait_for(lambda: (r := runner.get("cb"))["callbacks"] and all(
            event["state"] in ("failed", "delivered") for event in r["callbacks"]) and len(r["callbacks"]) == 2 and r,
            timeout=30, what="both callback events settled")
        for event in record["callbacks"]:
            # A truncated 200 is still a 200 (the status line arrived); everything else fails, with a reason.
            if event["state"] == "failed":
                assert event["attempts"] == 3 and event["last_error"], event
        assert server.connections >= 2
        still_serving(runner, "next")
    finally:
        server.close()


def test_a_callback_receiver_that_hangs(make_runner: Callable[..., Runner]):
    receiver = CallbackReceiver()
    receiver.hang = threading.Event()
    try:
        # 2 s per attempt: long enough that, on a loaded machine, connecting never times out first (that would be
        # reported as "connection failed"), short enough to give both events up in seconds.
        runner = make_runner(mock_seconds=0.05, callback_max_attempts=2, callback_backoff_seconds=0.02,
                             callback_timeout_seconds=2)
        assert runner.submit(task_id="cb", status_callback_url=receiver.url).status_code == 202
        assert runner.wait_status("cb")["status"] == "success"
        record = wait_for(lambda: (r := runner.get("cb"))["callbacks"] and len(r["callbacks"]) == 2 and all(
            event["state"] == "failed" for event in r["callbacks"]) and r, timeout=60, what="both given up")
        for event in record["callbacks"]:
            assert event["attempts"] == 2 and "timed out" in event["last_error"].lower(), event
        still_serving(runner, "next")
        receiver.hang.set()  # the receiver answers again: the next task's callbacks arrive, in order
        assert runner.submit(task_id="later", status_callback_url=receiver.url).status_code == 202
        assert runner.wait_status("later")["status"] == "success"
        delivered = wait_for(lambda: len(receiver.delivered("later")) == 2 and receiver.delivered("later"),
                             timeout=30, what="the later task's callbacks")
        assert [item.body["sequence"] for item in delivered] == [1, 2]
    finally:
        receiver.close()


def test_a_child_that_closes_its_stdout_early(make_runner: Callable[..., Runner]):
    runner = shell_runner(make_runner, "echo before; exec 1>&-; sleep 0.3; echo still-here >&2; exit 4")
    runner.submit(task_id="closed")
    record = runner.wait_status("closed")
    assert (record["status"], record["exit_code"]) == ("failed", 4)
    assert record["stdout"] == "before\n" and record["stderr"] == "still-here\n"
    still_serving(runner, "next")


def test_a_child_that_ignores_sigterm_is_killed_on_cancel(make_runner: Callable[..., Runner], tmp_path: Path):
    ready = tmp_path / "ready"
    runner = shell_runner(make_runner, f"trap '' TERM; touch {ready}; while :; do sleep 0.05; done",
                          kill_grace_seconds=0.5)
    runner.submit(task_id="stubborn")
    wait_for(ready.exists, what="the trap to be set")
    pid = runner.get("stubborn")["pid"]
    result = runner.cancel("stubborn")
    assert result.status_code == 200 and result.json["status"] == "canceled"
    wait_for(lambda: not group_alive(pid), what="the group to be gone after SIGKILL")
    still_serving(runner, "next")


def test_a_child_that_exits_at_once(make_runner: Callable[..., Runner]):
    runner = shell_runner(make_runner, "exit 0")
    for index in range(20):
        runner.submit(task_id=f"quick{index}")
    for index in range(20):
        assert runner.wait_status(f"quick{index}")["status"] == "success"
    still_serving(runner, "next")


def read_only_bind(path: Path) -> Callable[[], None]:
    """Make ``path`` read-only even for root (a read-only bind mount over itself); returns the undo."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
    return lambda: subprocess.run(["umount", str(path)], check=True)


def require_mount() -> None:
    probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", "/mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail(f"this suite needs root and mount(8): {probe.stderr.decode()}")
    subprocess.run(["umount", "/mnt"], check=True)


def worktrees_of(repo: Path) -> list[str]:
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list", "--porcelain"], capture_output=True,
                            text=True, check=True).stdout
    return [line.split(" ", 1)[1] for line in listed.splitlines() if line.startswith("worktree ")]


def worktree_body(repo: Path, path: Path, branch: str) -> dict[str, object]:
    return {"execution_mode": "isolated-worktree",
            "workspace": {"project_root": str(repo), "worktree_path": str(path), "git_branch": branch}}


def test_git_failing_mid_setup_on_a_read_only_repository(make_runner: Callable[..., Runner], tmp_path: Path):
    require_mount()
    repo = tmp_path / "repo"
    make_repo(repo)
    undo = read_only_bind(repo)
    try:
        runner = shell_runner(make_runner, "pwd")
        result = runner.submit(task_id="ro", **worktree_body(repo, tmp_path / "wt", "feature"))
        assert result.status_code == 202, result.text
        record = runner.wait_status("ro")
        assert record["status"] == "failed" and record["exit_code"] is None, record  # nothing ran
        assert record["message"].startswith("git worktree add failed: "), record["message"]
        assert record["started_at"] is None and not (tmp_path / "wt").exists()
        still_serving(runner, "next")
    finally:
        undo()
    # Writable again: the same path and branch are free (the claims were released), and the task runs.
    assert worktrees_of(repo) == [str(repo)]
    result = runner.submit(task_id="ro", run_id="run-2", **worktree_body(repo, tmp_path / "wt", "feature"))
    assert result.status_code == 202, result.text
    record = runner.wait_status("ro")
    assert (record["status"], record["stdout"]) == ("success", f"{tmp_path / 'wt'}\n"), record


def test_git_failing_mid_setup_on_a_locked_ref(make_runner: Callable[..., Runner], tmp_path: Path):
    """A stale ``refs/heads/<branch>.lock`` (a git that crashed) makes ``worktree add -B`` fail: the task fails
    with git's words, nothing stays registered, and once the lock is gone the same branch and path work."""
    repo = tmp_path / "repo"
    make_repo(repo)
    lock = repo / ".git" / "refs" / "heads" / "feature.lock"
    lock.write_text("")
    runner = shell_runner(make_runner, "pwd")
    assert runner.submit(task_id="locked", **worktree_body(repo, tmp_path / "wt", "feature")).status_code == 202
    record = runner.wait_status("locked")
    assert record["status"] == "failed" and record["exit_code"] is None, record
    assert record["message"].startswith("git worktree add failed: ") and "feature.lock" in record["message"]
    assert worktrees_of(repo) == [str(repo)] and not (tmp_path / "wt").exists()
    still_serving(runner, "next")
    lock.unlink()
    result = runner.submit(task_id="locked", run_id="run-2", **worktree_body(repo, tmp_path / "wt", "feature"))
    assert result.status_code == 202, result.text
    assert runner.wait_status("locked")["status"] == "success"


def test_a_stale_index_lock_of_the_main_checkout_does_not_concern_a_worktree(make_runner: Callable[..., Runner],
                                                                               tmp_path: Path):
    """``.git/index.lock`` locks the main checkout's index only: a worktree has its own, so the task runs, its
    work is saved and the worktree removed; the stale lock is left alone (it is not the runner's)."""
    repo = tmp_path / "repo"
    make_repo(repo)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    runner = shell_runner(make_runner, "echo new > g; git add g; git -c user.name=t -c user.email=t@t commit -qm two")
    assert runner.submit(task_id="indexed", **worktree_body(repo, tmp_path / "wt", "feature")).status_code == 202
    record = runner.wait_status("indexed")
    assert record["status"] == "success", record
    assert record["worktree_commits"] == 1 and record["worktree_cleanup_succeeded"] is True, record
    assert lock.exists() and worktrees_of(repo) == [str(repo)]
    still_serving(runner, "next")


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    with open(path, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def phases(runner: Runner) -> list[str]:
    actors = runner.client.simulate_get("/debug/actors").json["actors"]
    return [actor["state"].get("phase") for actor in actors if actor["class"] == "TaskActor" and actor["state"]]


def test_the_data_disk_full(make_runner: Callable[..., Runner], tmp_path: Path):
    """Output that fills the data dir: the run ends; its end cannot be written, so the actor keeps it and retries
    (it answers meanwhile); new submissions are refused with 507 and nothing is stored; once space is back the
    end is recorded and new work runs."""
    require_mount()
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "none", str(data)], check=True)
    runner = None
    try:
        runner = shell_runner(make_runner, 'head -c 8000000 /dev/zero; echo "$HOST_RUNNER_PROMPT"',
                              data_dir=data / "data", min_free_bytes=0)  # the store full, not the threshold
        assert runner.submit(task_id="flood").status_code == 202
        pid = wait_for(lambda: runner.get("flood")["pid"], what="the flood to start")
        wait_for(lambda: not group_alive(pid), what="the flood to end")
        fill(data / "filler")  # whatever space was left
        wait_for(lambda: "recording" in phases(runner), what="the actor to hold the end it cannot write")
        assert runner.get("flood")["status"] == "running"  # the last state that could be written
        assert runner.client.simulate_get("/health").json == {"status": "ok", "disk": "ok"}
        refused = runner.submit(task_id="refused", executor="mock")
        assert refused.status_code == 507 and "full" in refused.json["detail"], refused.text
        assert runner.client.simulate_get("/tasks/refused").status_code == 404
        # space is back: the end is written (with the exit code, though the wrapper could not write its file)
        (data / "filler").unlink()
        for path in (data / "data").rglob("stdout.log"):
            path.unlink()
        record = runner.wait_status("flood", timeout=60)
        assert record["status"] == "failed" and record["exit_code"] not in (None, 0), record
        assert record["message"] == f"exited with code {record['exit_code']}", record
        still_serving(runner, "next")
    finally:
        if runner is not None:
            runner.stop()
        subprocess.run(["umount", "-l", str(data)], check=True)


def test_a_callback_outcome_that_cannot_be_written(make_runner: Callable[..., Runner], tmp_path: Path):
    """The receiver answers while the disk is full: the CallbackActor cannot record the delivery, so it keeps the
    event and sends it again later (same event id) instead of settling it in memory only; once space is back
    every event is recorded delivered, in order."""
    require_mount()
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "none", str(data)], check=True)
    receiver = CallbackReceiver()
    receiver.hang = threading.Event()
    runner = None
    try:
        runner = make_runner(data_dir=data / "data", mock_seconds=0.05, callback_timeout_seconds=60,
                             callback_backoff_seconds=0.05, min_free_bytes=0)
        assert runner.submit(task_id="cb", status_callback_url=receiver.url).status_code == 202
        wait_for(lambda: receiver.hanging == 1, what="the first callback to reach the receiver")
        fill(data / "filler")
        receiver.hang.set()  # answered 200 now, with nowhere to write that it was
        wait_for(lambda: len(receiver.for_task("cb")) >= 2, timeout=30, what="the event to be sent again")
        assert runner.client.simulate_get("/health").json == {"status": "ok", "disk": "ok"}
        (data / "filler").unlink()
        record = wait_for(lambda: (r := runner.get("cb"))["status"] == "success" and len(r["callbacks"]) == 2 and all(
            event["state"] == "delivered" for event in r["callbacks"]) and r, timeout=60, what="all delivered")
        delivered = receiver.delivered("cb")
        assert [item.body["sequence"] for item in delivered] == [1, 2]
        assert [item.body["event_id"] for item in delivered] == [event["event_id"] for event in record["callbacks"]]
        first = [item for item in receiver.for_task("cb") if item.body["sequence"] == 1]
        assert len(first) >= 2 and len({item.body["event_id"] for item in first}) == 1  # sent again, same id
        still_serving(runner, "next")
    finally:
        if runner is not None:
            runner.stop()
        receiver.close()
        subprocess.run(["umount", "-l", str(data)], check=True)


def test_a_daemon_that_leaves_the_process_group_is_stopped(make_runner: Callable[..., Runner], tmp_path: Path):
    """setsid takes a child out of the task's process group, so the group kill misses it; the wrapper is a child
    subreaper, so the escaped daemon is re-parented to it, and it stops what is left once the command ends."""
    pidfile = tmp_path / "daemon.pid"
    runner = shell_runner(make_runner, f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' </dev/null >/dev/null "
                                       "2>&1 & sleep 0.2; echo parent-done")
    runner.submit(task_id="daemon")
    record = runner.wait_status("daemon")
    assert record["status"] == "success" and record["stdout"] == "parent-done\n"
    daemon = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the daemon's pid"))
    assert not os.path.exists(f"/proc/{daemon}")  # stopped (and reaped) before the run was reported ended
    still_serving(runner, "next")


def test_a_daemon_that_leaves_the_group_is_stopped_on_cancel(make_runner: Callable[..., Runner], tmp_path: Path):
    """Cancel signals the escaped daemon too (it ignores SIGTERM here, so it takes the SIGKILL after grace)."""
    pidfile = tmp_path / "daemon.pid"
    runner = shell_runner(make_runner, f"setsid sh -c \"trap '' TERM; echo \\$\\$ > {pidfile}; while :; do sleep "
                                       "0.05; done\" </dev/null >/dev/null 2>&1 & sleep 300", kill_grace_seconds=0.5)
    runner.submit(task_id="daemon")
    daemon = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the daemon's pid"))
    assert runner.cancel("daemon").json["status"] == "canceled"
    wait_for(lambda: not os.path.exists(f"/proc/{daemon}") or Path(f"/proc/{daemon}/stat").read_text()
             .rsplit(")", 1)[1].split()[0] == "Z", what="the escaped daemon to be killed")
    still_serving(runner, "next")


# --- the Docker daemon stopped under a running sandbox ---------------------------------------------------------
class SecondDockerd:
    """A dockerd of this test's own (own socket, data root and exec root), so stopping it disturbs nobody else's
    containers. Paths are short: the socket paths inside the exec root must fit in 108 bytes."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hr-dockerd-", dir="/tmp"))
        self.host = f"unix://{self.root}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=self.env())

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")
        self.process = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false", "-H", self.host,
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "docker.pid")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_for(lambda: self.process.poll() is None and self.docker("info", timeout=10).returncode == 0,
                 timeout=60, interval=0.3, what="the second dockerd to answer")

    def load(self, image: str) -> None:
        archive = self.root / "image.tar"
        subprocess.run(["docker", "save", "-o", str(archive), image], check=True, capture_output=True, timeout=60)
        loaded = self.docker("load", "-i", str(archive))
        assert loaded.returncode == 0, loaded.stderr
        archive.unlink()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: dockerd stops its containers and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        # dockerd unmounts its layers on a clean stop; anything still mounted under the root is unmounted first
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            target = line.split()[1]
            if target.startswith(str(self.root)):
                subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.docker
def test_the_docker_daemon_stopped_while_a_sandbox_runs(make_runner: Callable[..., Runner]):
    require_docker()
    image = ensure_busybox_image()
    daemon = SecondDockerd()
    try:
        daemon.start()
        daemon.load(image)
        runner = make_runner(daemon.env(), instance_id=f"test-{uuid.uuid4().hex[:12]}")
        result = runner.submit(task_id="box", execution_mode="docker-sandbox",
                               sandbox={"image": image, "command": ["sh", "-c", "echo up; sleep 300"]})
        assert result.status_code == 202, result.text
        record = runner.wait_status("box", "running", timeout=60)
        container = record["container_id"]
        wait_for(lambda: runner.get("box")["stdout"] == "up\n", timeout=30, what="the container to run")
        daemon.stop()
        record = runner.wait_status("box", timeout=60)
        # Either the daemon stopped the container and told its client (an exit code, like any stop), or the
        # client lost the daemon first (docker daemon not reachable): never a success, never left running.
        assert record["status"] == "failed" and record["exit_code"] not in (None, 0), record
        assert record["message"].startswith(("exited with code", "docker daemon not reachable")), record
        still_serving(runner, "next")
        # The daemon comes back: the container it still holds is removed by the runner, which kept trying.
        daemon.start()
        wait_for(lambda: daemon.docker("ps", "--all", "--quiet", "--no-trunc").stdout.split().count(container) == 0,
                 timeout=90, interval=0.5, what="the stopped container to be removed once the daemon is back")
    finally:
        daemon.remove()
