"""The native wrapper's container paths (``--namespace``): the command sees the plan's directories under
/workspace, a private /tmp and the host's everything else; the host's /workspace is never made. As root (a mount
namespace) and as an unprivileged user (a user namespace too), run here as ``nobody`` through ``setpriv``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_runner.run.container_paths import agent_plan
from host_runner.run.process_group import PYTHON_WRAPPER, ProcessSpec, RunFiles, read_exit_status, spawn
from host_runner.run.wrapper_build import build_native_wrapper
from support.paths import FAKE_BIN
from support.waiting import wait_for

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user (unlike a venv or pyenv under /root)


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_native_wrapper(tmp_path_factory.mktemp("bin")))


def host_workspace() -> list[str] | None:
    return sorted(os.listdir("/workspace")) if os.path.lexists("/workspace") else None


def run_planned(native: str, tmp_path: Path, script: str, **dirs: Path) -> tuple[int, str]:
    """Run ``sh -c script`` under the wrapper with the agent plan of ``dirs`` (cwd, ipc, global); returns the exit
    status and stdout."""
    files = RunFiles(tmp_path / "run")
    files.create()
    plan = agent_plan(dirs["cwd"], dirs["ipc"], dirs.get("global_dir"), ())
    spec = ProcessSpec(argv=("sh", "-c", script), env=dict(os.environ), cwd=dirs["cwd"], namespace=plan)
    spawned = spawn(spec, files, (native,))
    spawned.release()
    code = spawned.popen.wait(timeout=30)
    return code, files.stdout.read_text() + files.stderr.read_text()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    made = {name: tmp_path / name for name in ("cwd", "ipc", "global_dir")}
    for path in made.values():
        path.mkdir()
    (made["global_dir"] / "CLAUDE.md").write_text("shared\n")
    return made


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace as root")
def test_the_plan_is_what_the_command_sees_and_the_host_keeps_its_paths(native: str, tmp_path: Path, dirs):
    before = host_workspace()
    code, output = run_planned(native, tmp_path, """
        set -u
        echo "cwd=$(pwd)"
        echo made > here.txt
        touch /workspace/ipc/from-agent
        cat /workspace/global/CLAUDE.md
        touch /workspace/global/x 2>/dev/null && echo "global writable" || echo "global read-only"
        mkdir /workspace/new 2>/dev/null && echo "workspace writable" || echo "workspace read-only"
        echo "tmp=[$(ls -A /tmp)]"; touch /tmp/scratch && echo "tmp writable"
        test -d /proc/1 && test -d /usr && echo "host paths"
    """, **dirs)
    assert code == 0, output
    assert output.splitlines() == ["cwd=/workspace/group", "shared", "global read-only", "workspace read-only",
                                   "tmp=[]", "tmp writable", "host paths"]
    assert (dirs["cwd"] / "here.txt").read_text() == "made\n"
    assert (dirs["ipc"] / "from-agent").exists()
    assert not (dirs["global_dir"] / "x").exists()
    assert host_workspace() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace as root")
def test_a_plan_that_cannot_be_set_up_fails_like_a_command_that_cannot_start(native: str, tmp_path: Path, dirs):
    dirs["global_dir"] = tmp_path / "missing"
    code, output = run_planned(native, tmp_path, "echo ran", **dirs)
    assert code == 127 and "ran" not in output
    status = read_exit_status(tmp_path / "run" / "exit_status.json")
    assert status is not None and status.error == f"container paths: cannot open {tmp_path / 'missing'}: " \
                                                  "No such file or directory"


def test_the_wrapper_refuses_a_plan_it_cannot_follow(native: str, tmp_path: Path):
    for plan in (["rw", "/etc", "/etc/elsewhere"], ["rw", "/etc", "/workspace/../etc"], ["rw", "/etc"], []):
        answer = subprocess.run([native, str(tmp_path / "status"), "0", "1", "--namespace", *plan, "true"],
                                capture_output=True, text=True, timeout=10, check=False)
        assert answer.returncode == 2 and "usage" in answer.stderr, plan
    files = RunFiles(tmp_path / "python-run")
    files.create()
    plan = agent_plan(tmp_path, tmp_path, None, ())
    spawned = spawn(ProcessSpec(argv=("true",), env={}, cwd=tmp_path, namespace=plan), files, PYTHON_WRAPPER)
    spawned.release()
    assert spawned.popen.wait(timeout=30) == 127
    status = read_exit_status(files.exit_status)
    assert status is not None and "the Python wrapper cannot make a mount namespace" in (status.error or "")


# --- as an unprivileged user -------------------------------------------------------------------------------------
@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory ``nobody`` owns (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as nobody")
    path = Path(tempfile.mkdtemp(prefix="host-runner-nobody-"))
    path.chmod(0o755)
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give_nobody(path: Path, text: str) -> None:
    """Write ``path`` for nobody, atomically as the runner does (the test process's umask may be 077: an
    in-process runner of an earlier test set it)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.chown(temporary, NOBODY, NOBODY)
    temporary.rename(path)


def as_nobody(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def test_an_unprivileged_runner_runs_a_container_agent_in_a_user_namespace(native: str, nobody_dir: Path):
    wrapper = nobody_dir / "wrapper"
    shutil.copy(native, wrapper)
    check = subprocess.run(as_nobody(str(wrapper), "--check-namespace"), capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        pytest.skip(f"this machine gives unprivileged users no user namespace: {check.stderr.strip()}")
    before = host_workspace()
    work, ipc, run = (nobody_dir / name for name in ("work", "ipc", "run"))
    for path in (work, ipc / "input", run):
        path.mkdir(parents=True)
    for path in (work, ipc, ipc / "input", run):
        os.chown(path, NOBODY, NOBODY)
    stdin = nobody_dir / "input.json"
    give_nobody(stdin, json.dumps({"prompt": "hi", "groupFolder": "g", "chatJid": "", "isMain": False}))
    plan = agent_plan(work, ipc, None, ())
    agent = (SYSTEM_PYTHON, "-c", (FAKE_BIN / "container-agent-runner").read_text())
    go_read, go_write = os.pipe()
    with open(stdin, "rb") as source, open(run / "stdout.log", "wb") as out, open(run / "stderr.log", "wb") as err:
        process = subprocess.Popen(
            as_nobody(str(wrapper), str(run / "exit_status.json"), str(go_read), "1", *plan.wrapper_words(), *agent),
            stdin=source, stdout=out, stderr=err, cwd=work, pass_fds=(go_read,), start_new_session=True)
    os.close(go_read)
    os.write(go_write, b"g")
    os.close(go_write)
    try:
        frames = lambda: [json.loads(line) for line in (run / "stdout.log").read_text().splitlines()
                          if line.startswith("{")]
        wait_for(lambda: len(frames()) >= 2, timeout=20, what="the agent's first answer")
        report = json.loads(frames()[0]["result"])
        assert report["uid"] == NOBODY and report["cwd"] == "/workspace/group" and report["tmp_at_start"] == []
        give_nobody(ipc / "input" / "1.json", json.dumps({"type": "message", "text": "ping"}))
        wait_for(lambda: len(frames()) >= 3, timeout=20, what="the answer to a message")
        assert frames()[2]["result"] == "echo: ping"
        give_nobody(ipc / "input" / "_close", "")
        assert process.wait(timeout=20) == 0, (run / "stderr.log").read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert (work / "conversations" / "conversation-1.md").stat().st_uid == NOBODY  # its files, in its directory
    assert json.loads((run / "exit_status.json").read_text())["exit_code"] == 0
    assert host_workspace() == before
