"""The docker-sandbox mode on the real Docker engine: output and exit codes, env, workdir and mounts, the
hardening actually in effect, cancel and timeout removing the container, the orphan sweep at start,
re-adoption after a restart, clear failures (no daemon, no image, no docker), and every validation error.

Engine tests call ``require_docker()`` (through the ``image`` fixture): they skip without an engine, and fail
under CI=true. Start one with ``bash .ci/start-docker``."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host_runner.domain.sandbox_spec import Mount, SandboxSpec
from host_runner.ops.config import ConfigError, DockerSettings, load_config
from host_runner.sandbox.docker_cli import LABEL_INSTANCE, LABEL_RUN, LABEL_TASK, create_args, mount_option
from support.docker import (container_exists, containers_of, docker, ensure_busybox_image,
                            own_instance_id, remove_containers, require_docker)
from support.processes import pids_in_group
from support.runner import Runner
from support.waiting import wait_for

ABSENT_IMAGE = "host-runner-test/absent:1"


# --- helpers ---------------------------------------------------------------------------------------------------
def inspect(container_id: str) -> dict[str, Any]:
    result = docker("inspect", "--type", "container", container_id)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)[0]
    return data


def submit_sandbox(runner: Runner, task_id: str, image: str, *command: str, body: dict[str, Any] | None = None,
                   **sandbox: Any) -> dict[str, Any]:
    result = runner.submit(task_id=task_id, execution_mode="docker-sandbox",
                           sandbox={"image": image, "command": list(command), **sandbox}, **(body or {}))
    assert result.status_code == 202, result.text
    return result.json


def running_container(runner: Runner, task_id: str) -> dict[str, Any]:
    record = runner.wait_status(task_id, "running")
    assert re.fullmatch(r"[0-9a-f]{64}", record["container_id"] or ""), record
    return record


@pytest.fixture
def image() -> str:
    """The local busybox image (needs an engine: skips without one, fails under CI=true)."""
    require_docker()
    return ensure_busybox_image()


@pytest.fixture
def instance_id() -> Iterator[str]:
    """A runner instance id of this test's own; every container carrying it is removed afterwards."""
    yield from own_instance_id()


@pytest.fixture
def sandbox_runner(make_runner: Callable[..., Runner], instance_id: str) -> Callable[..., Runner]:
    def make(env: dict[str, str] | None = None, **settings: Any) -> Runner:
        settings.setdefault("instance_id", instance_id)
        return make_runner(env, **settings)

    return make


# --- running containers ----------------------------------------------------------------------------------------
@pytest.mark.docker
def test_exit_code_stdout_and_stderr_are_captured_and_the_container_removed(sandbox_runner, image, receiver):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-exit", image, "sh", "-c", "echo out; echo err >&2; exit 3",
                   body={"status_callback_url": receiver.url})
    record = runner.wait_status("box-exit")
    assert record["status"] == "failed"
    assert record["message"] == "exited with code 3"
    assert record["exit_code"] == 3
    assert record["stdout"] == "out\n"
    assert record["stderr"] == "err\n"
    assert record["executor"] == "docker"
    assert record["execution_mode"] == "docker-sandbox"
    assert Path(record["logs"]["stdout"]).read_text() == "out\n"
    # The container id was known when `running` was reported, and the container is gone at the end.
    events = wait_for(lambda: len(receiver.for_task("box-exit")) >= 2 and receiver.for_task("box-exit"))
    assert [event.body["status"] for event in events] == ["running", "failed"]
    assert events[0].body["container_id"] == record["container_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", record["container_id"])
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_a_successful_run_leaves_no_container_behind(sandbox_runner, image, instance_id):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-ok", image, "echo", "hello from the box")
    record = runner.wait_status("box-ok")
    assert (record["status"], record["message"], record["exit_code"]) == ("success", "completed", 0)
    assert record["stdout"] == "hello from the box\n"
    assert containers_of(instance_id) == []
    assert not pids_in_group(record["pid"])  # the docker client and its wrapper are gone too


@pytest.mark.docker
def test_env_workdir_and_the_runner_variables_reach_the_command(sandbox_runner, image, tmp_path: Path):
    runner = sandbox_runner()
    canary = "/tmp/pwned"
    env = {"GREETING": "hello world", "TRICKY": f"$(touch {canary}); `touch {canary}` '\"", "EMPTY": ""}
    script = ('pwd; printf "[%s]\\n" "$GREETING" "$TRICKY" "$EMPTY" "$HOST_RUNNER_TASK_ID" "$HOST_RUNNER_RUN_ID" '
              f'"$HOST_RUNNER_PROMPT"; ls {canary} 2>/dev/null || echo no-canary')
    prompt = "a 'prompt' with $(touch /tmp/pwned)\nand a second line"
    submit_sandbox(runner, "box-env", image, "sh", "-c", script, workdir="/srv/app", env=env,
                   body={"prompt": prompt, "run_id": "run-env"})
    record = runner.wait_status("box-env", "success")
    assert record["stdout"] == (f"/srv/app\n[hello world]\n[{env['TRICKY']}]\n[]\n[box-env]\n[run-env]\n"
                                f"[{prompt}]\nno-canary\n")
    # Without a workdir the command starts in /workspace/project.
    submit_sandbox(runner, "box-default-workdir", image, "pwd")
    assert runner.wait_status("box-default-workdir", "success")["stdout"] == "/workspace/project\n"


@pytest.mark.docker
def test_the_longest_prompt_reaches_the_container(sandbox_runner, image):
    from host_runner.domain.submission import MAX_PROMPT_BYTES

    runner = sandbox_runner()
    submit_sandbox(runner, "box-long-prompt", image, "sh", "-c", 'printf "%s" "$HOST_RUNNER_PROMPT" | wc -c',
                   body={"prompt": "p" * MAX_PROMPT_BYTES})
    assert runner.wait_status("box-long-prompt", "success")["stdout"].strip() == str(MAX_PROMPT_BYTES)


@pytest.mark.docker
def test_read_only_and_read_write_mounts(sandbox_runner, image, tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "data.txt").write_text("input data\n")
    outputs = tmp_path / "out, put \"here\""  # a comma and quotes: Docker reads --mount as CSV
    outputs.mkdir()
    runner = sandbox_runner()
    script = ("cat /in/data.txt; touch /in/new 2>/dev/null && echo in-writable || echo in-read-only; "
              "echo result > '/out put/result.txt' && echo out-written")
    mounts = [{"source": str(inputs), "target": "/in", "read_only": True},
              {"source": str(outputs), "target": "/out put", "read_only": False}]
    submit_sandbox(runner, "box-mounts", image, "sh", "-c", script, mounts=mounts)
    record = runner.wait_status("box-mounts", "success")
    assert record["stdout"] == "input data\nin-read-only\nout-written\n"
    assert (outputs / "result.txt").read_text() == "result\n"
    assert sorted(path.name for path in inputs.iterdir()) == ["data.txt"]


HARDENING_PROBE = r"""
touch /rootfile 2>&1 && echo root-writable
touch /tmp/scratch && echo tmp-writable
echo "links=$(ip -o link show | while read -r index name rest; do printf '%s' "$name"; done)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status | tr -d '\t '
echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"
echo "init=$(tr '\0' '\n' < /proc/1/cmdline | head -n 1)"
"""


def probe(runner: Runner, task_id: str, image: str) -> dict[str, str]:
    submit_sandbox(runner, task_id, image, "sh", "-c", HARDENING_PROBE)
    record = runner.wait_status(task_id, "success")
    lines = record["stdout"].splitlines()
    found = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in lines if "=" in line}
    found.update({line.split(":", 1)[0]: line.split(":", 1)[1] for line in lines if ":" in line})
    found["output"] = record["stdout"]
    return found


@pytest.mark.docker
def test_hardening_is_in_effect_by_default(sandbox_runner, image):
    found = probe(sandbox_runner(), "box-hardened", image)
    assert "Read-only file system" in found["output"] and "root-writable" not in found["output"]
    assert "tmp-writable" in found["output"]  # the tmpfs /tmp
    assert found["links"] == "lo:"  # --network none: loopback only
    assert int(found["CapEff"], 16) == 0 and int(found["CapBnd"], 16) == 0  # --cap-drop ALL
    assert found["NoNewPrivs"] == "1"
    assert found["pids"] == "256"
    assert found["memory"] == str(2 * 1024**3)
    assert found["cpu"] == "200000"  # 2 CPUs of a 100 ms period
    assert found["init"] == "/sbin/docker-init"  # --init: tini is PID 1


@pytest.mark.docker
def test_each_hardening_switch_can_be_turned_off(sandbox_runner, image):
    relaxed = DockerSettings(read_only=False, tmpfs=(), cap_drop_all=False, no_new_privileges=False, pids_limit=0,
                             memory="0", cpus=0, init=False)
    found = probe(sandbox_runner(docker=relaxed), "box-relaxed", image)
    assert "root-writable" in found["output"]
    assert int(found["CapEff"], 16) != 0
    assert found["NoNewPrivs"] == "0"
    assert found["pids"] == "max"
    assert int(found["memory"]) > 2 * 1024**3
    assert found["cpu"] == "-1"
    assert found["init"] == "sh"
    assert found["links"] == "lo:"  # the network stays none: it is a setting of its own


@pytest.mark.docker
def test_limits_follow_the_settings(sandbox_runner, image):
    settings = DockerSettings(pids_limit=64, memory="64m", cpus=0.5, tmpfs=("/tmp", "/scratch:size=1m"))
    runner = sandbox_runner(docker=settings)
    found = probe(runner, "box-limits", image)
    assert (found["pids"], found["memory"], found["cpu"]) == ("64", str(64 * 1024**2), "50000")
    submit_sandbox(runner, "box-scratch", image, "sh", "-c", "touch /scratch/x && echo scratch-writable")
    assert runner.wait_status("box-scratch", "success")["stdout"] == "scratch-writable\n"


@pytest.mark.docker
def test_out_of_memory_is_reported_as_such(sandbox_runner, image):
    runner = sandbox_runner(docker=DockerSettings(memory="16m"))
    # A shell variable of 64 MiB of zeros (turned into 'x') cannot fit in 16 MiB.
    submit_sandbox(runner, "box-oom", image, "sh", "-c", 'x=$(head -c 67108864 /dev/zero | tr "\\0" x); echo no')
    record = runner.wait_status("box-oom", timeout=60)
    assert record["status"] == "failed"
    assert record["message"] == "out of memory: the container exceeded its 16m limit"
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_container_name_labels_and_a_persistent_instance_id(make_runner, image, tmp_path: Path):
    runner = make_runner()  # no explicit instance id: the runner makes one and keeps it in its data directory
    instance = (tmp_path / "data" / "instance_id").read_text().strip()
    try:
        submit_sandbox(runner, "box:name@1", image, "sleep", "1000", body={"run_id": "run:with=odd+chars-123456"})
        record = running_container(runner, "box:name@1")
        details = inspect(record["container_id"])
        assert re.fullmatch(r"/host-runner-box_name_1-run_with_odd-[0-9a-f]{8}", details["Name"])
        labels = details["Config"]["Labels"]
        assert labels[LABEL_TASK] == "box:name@1"
        assert labels[LABEL_RUN] == "run:with=odd+chars-123456"
        assert labels[LABEL_INSTANCE] == instance
        again = runner.restart()
        assert again.system.config.instance_id == instance
        assert again.cancel("box:name@1").json["status"] == "canceled"
        assert not container_exists(record["container_id"])
    finally:
        remove_containers(f"{LABEL_INSTANCE}={instance}")


# --- cancel and timeout ------------------------------------------------------------------------------------------
@pytest.mark.docker
def test_cancel_removes_the_container(sandbox_runner, image):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-cancel", image, "sh", "-c", "echo started; sleep 1000")
    record = wait_for(lambda: (r := runner.get("box-cancel"))["stdout"] == "started\n" and r, what="output")
    assert inspect(record["container_id"])["State"]["Running"]
    result = runner.cancel("box-cancel")
    assert result.status_code == 200
    assert (result.json["status"], result.json["message"]) == ("canceled", "canceled by api")
    assert not container_exists(record["container_id"])
    wait_for(lambda: not pids_in_group(record["pid"]), what="the docker client to be gone")


@pytest.mark.docker
def test_cancel_removes_a_container_whose_command_ignores_sigterm(sandbox_runner, image):
    runner = sandbox_runner(kill_grace_seconds=0.5)
    submit_sandbox(runner, "box-stubborn", image, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
    record = wait_for(lambda: (r := runner.get("box-stubborn"))["stdout"] == "ready\n" and r, what="ready")
    assert runner.cancel("box-stubborn").json["status"] == "canceled"
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_cancel_right_after_running_does_not_wait_out_the_grace_period(sandbox_runner, image):
    # `running` is reported once the attached client is started, maybe before it has started the container: a
    # TERM then finds nothing to signal. The container must be removed at once, not after the (long) grace.
    runner = sandbox_runner(kill_grace_seconds=300)
    for attempt in range(3):
        task_id = f"box-early-cancel-{attempt}"
        submit_sandbox(runner, task_id, image, "sleep", "1000")
        record = running_container(runner, task_id)
        threading.Thread(target=runner.cancel, args=(task_id,), daemon=True).start()
        runner.wait_status(task_id, "canceled", timeout=30)
        assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_timeout_removes_the_container(sandbox_runner, image):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-slow", image, "sh", "-c", "echo partial; sleep 1000", body={"timeout_seconds": 1})
    record = runner.wait_status("box-slow", "failed")
    assert record["message"] == "timed out after 1 s"
    assert record["stdout"] == "partial\n"
    assert not container_exists(record["container_id"])


# --- restarts ----------------------------------------------------------------------------------------------------
def create_labelled(image: str, instance: str, task_id: str, run_id: str) -> str:
    created = docker("create", "--label", f"{LABEL_INSTANCE}={instance}", "--label", f"{LABEL_TASK}={task_id}",
                     "--label", f"{LABEL_RUN}={run_id}", "--network", "none", "--", image, "sleep", "1000")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.mark.docker
def test_orphan_sweep_at_start_keeps_only_containers_of_running_tasks(sandbox_runner, image, instance_id):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-done", image, "true")
    done = runner.wait_status("box-done", "success")
    submit_sandbox(runner, "box-keep", image, "sleep", "1000")
    keep = running_container(runner, "box-keep")
    runner.system.stop()  # as after a crash: the running container stays
    unknown = create_labelled(image, instance_id, "box-ghost", "run-1")  # a task the store never heard of
    ended = create_labelled(image, instance_id, "box-done", done["run_id"])  # a task that is over
    stray = create_labelled(image, instance_id, "box-keep", keep["run_id"])  # not the container box-keep runs
    other_instance = f"{instance_id}-other"
    foreign = create_labelled(image, other_instance, "box-ghost", "run-1")  # another runner's: never touched
    try:
        second = runner.restart()
        assert not container_exists(unknown)
        assert not container_exists(ended)
        assert not container_exists(stray)
        assert container_exists(foreign)
        assert inspect(keep["container_id"])["State"]["Running"]
        assert second.get("box-keep")["status"] == "running"  # re-adopted, not swept
        assert second.cancel("box-keep").json["status"] == "canceled"
        assert containers_of(instance_id) == []
    finally:
        remove_containers(f"{LABEL_INSTANCE}={other_instance}")


@pytest.mark.docker
def test_a_stale_container_with_the_runs_name_is_replaced(sandbox_runner, image, instance_id):
    from host_runner.sandbox.docker_cli import container_name

    runner = sandbox_runner()
    # As if a start was cut short after `docker create` and the sweep could not run (the engine was down then).
    stale = docker("create", "--name", container_name(instance_id, "box-stale", "run-1"), "--label",
                   f"{LABEL_INSTANCE}={instance_id}", "--", image, "true")
    assert stale.returncode == 0, stale.stderr
    submit_sandbox(runner, "box-stale", image, "echo", "ran")
    record = runner.wait_status("box-stale", "success")
    assert record["stdout"] == "ran\n"
    assert not container_exists(stale.stdout.strip())


@pytest.mark.docker
def test_a_running_container_is_readopted_and_finishes_with_its_exit_code(sandbox_runner, image, tmp_path: Path):
    signals = tmp_path / "signals"
    signals.mkdir()
    runner = sandbox_runner()
    script = "echo before; while [ ! -e /signals/go ]; do sleep 0.1; done; echo after; exit 4"
    submit_sandbox(runner, "box-adopt", image, "sh", "-c", script,
                   mounts=[{"source": str(signals), "target": "/signals", "read_only": True}])
    record = wait_for(lambda: (r := runner.get("box-adopt"))["stdout"] == "before\n" and r, what="output")
    second = runner.restart()
    assert second.get("box-adopt")["status"] == "running"
    assert second.get("box-adopt")["container_id"] == record["container_id"]
    (signals / "go").touch()
    final = second.wait_status("box-adopt", "failed")
    assert (final["exit_code"], final["message"]) == (4, "exited with code 4")
    assert final["stdout"] == "before\nafter\n"  # the attached client kept writing while no runner ran
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_a_container_whose_client_died_is_watched_through_docker_wait(sandbox_runner, image, tmp_path: Path):
    signals = tmp_path / "signals"
    signals.mkdir()
    runner = sandbox_runner()
    script = "echo started; while [ ! -e /signals/go ]; do sleep 0.1; done; exit 6"
    submit_sandbox(runner, "box-orphaned-client", image, "sh", "-c", script,
                   mounts=[{"source": str(signals), "target": "/signals", "read_only": True}])
    record = wait_for(lambda: (r := runner.get("box-orphaned-client"))["stdout"] == "started\n" and r)
    runner.system.stop()
    os.killpg(record["pid"], 9)  # the docker client and its wrapper die; the container does not
    wait_for(lambda: not pids_in_group(record["pid"]), what="the client to be gone")
    assert inspect(record["container_id"])["State"]["Running"]
    second = runner.restart()
    assert second.get("box-orphaned-client")["status"] == "running"
    (signals / "go").touch()
    final = second.wait_status("box-orphaned-client", "failed")
    assert final["exit_code"] == 6, (final["message"], final["stderr"])  # from the container itself, not from the dead client
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_a_readopted_container_can_be_canceled(sandbox_runner, image):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-adopt-cancel", image, "sleep", "1000")
    record = running_container(runner, "box-adopt-cancel")
    second = runner.restart()
    assert second.cancel("box-adopt-cancel").json["status"] == "canceled"
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_a_container_removed_while_the_runner_was_down_ends_failed(sandbox_runner, image):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-vanished", image, "sh", "-c", "echo started; sleep 1000")
    record = wait_for(lambda: (r := runner.get("box-vanished"))["stdout"] == "started\n" and r)
    runner.system.stop()
    assert docker("rm", "--force", record["container_id"]).returncode == 0
    wait_for(lambda: not pids_in_group(record["pid"]), what="the client to notice")
    final = runner.restart().wait_status("box-vanished", "failed")
    assert final["exit_code"] == 137  # what its client recorded: the container was killed


# --- clear failures ----------------------------------------------------------------------------------------------
@pytest.mark.docker
def test_daemon_not_reachable_fails_the_task_clearly(sandbox_runner, image, tmp_path: Path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    runner = sandbox_runner(env)  # its start-up sweep fails too, and only logs it
    submitted = runner.submit(task_id="box-no-daemon", execution_mode="docker-sandbox",
                              sandbox={"image": image, "command": ["true"]})
    assert submitted.status_code == 202
    record = runner.wait_status("box-no-daemon")
    assert record["status"] == "failed"
    assert record["message"].startswith("docker daemon not reachable: ")
    assert "no-daemon.sock" in record["message"]
    assert record["container_id"] is None and record["started_at"] is None


@pytest.mark.docker
def test_missing_image_fails_the_task_clearly(sandbox_runner, image, instance_id):
    runner = sandbox_runner(docker=DockerSettings(pull="never"))
    submit_sandbox(runner, "box-no-image", ABSENT_IMAGE, "true")
    record = runner.wait_status("box-no-image")
    assert record["status"] == "failed"
    assert record["message"].startswith(f"docker image {ABSENT_IMAGE} is not available: ")
    assert "No such image" in record["message"]
    assert containers_of(instance_id) == []


def test_missing_docker_binary_fails_the_task_clearly(make_runner, tmp_path: Path):
    runner = make_runner(docker=DockerSettings(binary=str(tmp_path / "no-docker")))
    submit_sandbox(runner, "box-no-binary", ABSENT_IMAGE, "true")
    record = runner.wait_status("box-no-binary")
    assert record["status"] == "failed"
    assert record["message"] == f"docker binary not found ({str(tmp_path / 'no-docker')!r}; set HOST_RUNNER_DOCKER_BIN)"


@pytest.mark.docker
def test_a_command_missing_from_the_image_fails_clearly(sandbox_runner, image):
    runner = sandbox_runner()
    submit_sandbox(runner, "box-no-cmd-init", image, "no-such-command")  # under --init, tini reports it
    record = runner.wait_status("box-no-cmd-init")
    assert (record["status"], record["exit_code"]) == ("failed", 127)
    assert "no-such-command" in record["stderr"]
    plain = sandbox_runner(docker=DockerSettings(init=False))
    submit_sandbox(plain, "box-no-cmd", image, "no-such-command")
    record = plain.wait_status("box-no-cmd")
    assert record["status"] == "failed"
    assert record["message"].startswith("the container did not start: ")
    assert "no-such-command" in record["message"]
    assert not container_exists(record["container_id"])


@pytest.mark.docker
def test_a_mount_source_removed_before_the_start_fails_clearly(sandbox_runner, image, tmp_path: Path):
    source = tmp_path / "vanishing"
    source.mkdir()
    runner = sandbox_runner(max_concurrency=1)
    submit_sandbox(runner, "box-first", image, "sleep", "1000")
    running_container(runner, "box-first")
    submit_sandbox(runner, "box-vanishing", image, "true", mounts=[{"source": str(source), "target": "/data"}])
    source.rmdir()  # valid when submitted, gone when the queued task starts
    runner.cancel("box-first")
    record = runner.wait_status("box-vanishing")
    assert record["status"] == "failed"
    # Checked again before `docker create`: no container was made to find it out.
    assert record["message"] == ("sandbox refused when checked again before creating its container (none was "
                                 f"created): sandbox.mounts[0].source: {source} does not exist on the host")
    assert record["container_id"] is None


def containers_of_task(instance_id: str, task_id: str) -> list[str]:
    listed = docker("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={LABEL_INSTANCE}={instance_id}",
                    "--filter", f"label={LABEL_TASK}={task_id}")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def refused_again(source: Path, detail: str) -> str:
    return ("sandbox refused when checked again before creating its container (none was created): "
            f"sandbox.mounts[0].source: {source} (which resolves to {detail}, which sandboxes may never mount")


@pytest.mark.docker
def test_a_mount_source_swapped_for_a_symlink_to_etc_while_queued_creates_no_container(sandbox_runner, image,
                                                                                      instance_id, tmp_path: Path):
    """Valid when submitted; while the task waits for a slot, its source becomes a symlink to /etc. The check
    before `docker create` refuses it: the task fails saying why, and no container exists (so /etc is intact)."""
    from host_runner.sandbox.docker_cli import container_name

    source = tmp_path / "share"
    source.mkdir()
    canary = Path("/etc") / f"host-runner-test-{instance_id}"
    runner = sandbox_runner(max_concurrency=1)
    submit_sandbox(runner, "box-first", image, "sleep", "1000")
    running_container(runner, "box-first")
    submit_sandbox(runner, "box-swapped", image, "touch", f"/host/{canary.name}",
                   mounts=[{"source": str(source), "target": "/host", "read_only": False}])
    assert runner.get("box-swapped")["status"] == "queued"
    source.rmdir()
    source.symlink_to("/etc")
    try:
        runner.cancel("box-first")
        record = runner.wait_status("box-swapped")
        assert record["status"] == "failed"
        assert record["message"] == refused_again(Path(os.path.realpath(source.parent)) / "share",
                                                  "/etc) is the host directory /etc")
        assert record["container_id"] is None and record["started_at"] is None
        assert containers_of_task(instance_id, "box-swapped") == []
        name = container_name(instance_id, "box-swapped", record["run_id"])
        assert docker("inspect", "--type", "container", name).returncode != 0
    finally:
        ran = canary.exists()
        canary.unlink(missing_ok=True)
    assert not ran, "the sandbox wrote into the host's /etc"


@pytest.mark.docker
def test_a_stored_sandbox_that_no_longer_passes_fails_after_a_restart(sandbox_runner, image, instance_id,
                                                                     tmp_path: Path):
    """A queued sandbox stored by one runner, whose mount source is swapped for a symlink to the runner's data
    directory while no runner runs: the next runner, on the same data directory, requeues it at start and fails
    it without creating a container."""
    source = tmp_path / "share"
    source.mkdir()
    runner = sandbox_runner(max_concurrency=1)
    submit_sandbox(runner, "box-first", image, "sleep", "1000")
    running_container(runner, "box-first")
    submit_sandbox(runner, "box-stored", image, "sh", "-c", "echo pwned > /host/pwned",
                   mounts=[{"source": str(source), "target": "/host"}])
    runner.system.stop()  # box-first keeps running; box-stored stays queued in the store
    data_dir = Path(os.path.realpath(runner.config.data_dir))
    source.rmdir()
    source.symlink_to(data_dir)
    second = runner.restart(max_concurrency=2)  # a slot for it at once
    record = second.wait_status("box-stored")
    assert record["status"] == "failed"
    assert record["message"] == refused_again(Path(os.path.realpath(source.parent)) / "share",
                                              f"{data_dir}) is the runner's data directory {data_dir}")
    assert record["container_id"] is None
    assert containers_of_task(instance_id, "box-stored") == []
    assert not (data_dir / "pwned").exists()
    assert second.get("box-first")["status"] == "running"  # re-adopted, untouched by the refusal
    assert second.cancel("box-first").json["status"] == "canceled"


# --- validation --------------------------------------------------------------------------------------------------
def sandbox_body(tmp_path: Path, **sandbox: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"image": "busybox:1.36", "command": ["echo", "hi"]}
    base.update(sandbox)
    return {"task_id": "t-1", "run_id": "r-1", "prompt": "p", "execution_mode": "docker-sandbox",
            "sandbox": {key: value for key, value in base.items() if value is not ...}}


#: A mount source the cases may use where it must be valid: a directory of the test's own (``/tmp`` would not do,
#: it contains the runner's data directory).
SRC = "@source@"

SANDBOX_CASES = [
    ("image missing", {"image": ...}, "sandbox.image"),
    ("image empty", {"image": ""}, "sandbox.image"),
    ("image not a string", {"image": 7}, "sandbox.image"),
    ("image like an option", {"image": "--privileged"}, "sandbox.image"),
    ("image with a space", {"image": "busybox latest"}, "sandbox.image"),
    ("image upper case", {"image": "BusyBox"}, "sandbox.image"),
    ("image with NUL", {"image": "busy\x00box"}, "sandbox.image"),
    ("command missing", {"command": ...}, "sandbox.command"),
    ("command empty", {"command": []}, "sandbox.command"),
    ("command a string", {"command": "echo hi"}, "sandbox.command"),
    ("command item not a string", {"command": ["echo", 1]}, "sandbox.command[1]"),
    ("program like an option", {"command": ["--rm", "x"]}, "sandbox.command[0]"),
    ("program empty", {"command": ["", "x"]}, "sandbox.command[0]"),
    ("command item with NUL", {"command": ["echo", "a\x00b"]}, "sandbox.command[1]"),
    ("command item lone surrogate", {"command": ["echo", "\ud800"]}, "sandbox.command[1]"),
    ("command item too long", {"command": ["echo", "x" * 131_072]}, "sandbox.command[1]"),
    ("workdir relative", {"workdir": "work"}, "sandbox.workdir"),
    ("workdir not a string", {"workdir": ["/w"]}, "sandbox.workdir"),
    ("env a list", {"env": ["A=1"]}, "sandbox.env"),
    ("env bad name", {"env": {"1BAD": "x"}}, "sandbox.env"),
    ("env name with =", {"env": {"A=B": "x"}}, "sandbox.env"),
    ("env name like an option", {"env": {"-e": "x"}}, "sandbox.env"),
    ("env reserved name", {"env": {"HOST_RUNNER_PROMPT": "x"}}, "sandbox.env.HOST_RUNNER_PROMPT"),
    ("env value not a string", {"env": {"A": 1}}, "sandbox.env.A"),
    ("env value with NUL", {"env": {"A": "a\x00"}}, "sandbox.env.A"),
    ("env value too long", {"env": {"A": "x" * 131_070}}, "sandbox.env.A"),
    ("mounts an object", {"mounts": {"source": "/tmp"}}, "sandbox.mounts"),
    ("mount not an object", {"mounts": ["/tmp:/tmp"]}, "sandbox.mounts[0]"),
    ("mount source missing", {"mounts": [{"target": "/t"}]}, "sandbox.mounts[0].source"),
    ("mount source relative", {"mounts": [{"source": "tmp", "target": "/t"}]}, "sandbox.mounts[0].source"),
    ("mount source absent", {"mounts": [{"source": SRC, "target": "/a"},
                                        {"source": "/nonexistent/dir", "target": "/b"}]}, "sandbox.mounts[1].source"),
    ("mount source with newline", {"mounts": [{"source": "/tmp\n", "target": "/t"}]}, "sandbox.mounts[0].source"),
    ("mount target missing", {"mounts": [{"source": SRC}]}, "sandbox.mounts[0].target"),
    ("mount target relative", {"mounts": [{"source": SRC, "target": "t"}]}, "sandbox.mounts[0].target"),
    ("mount target root", {"mounts": [{"source": SRC, "target": "/"}]}, "sandbox.mounts[0].target"),
    ("mount target twice", {"mounts": [{"source": SRC, "target": "/t"}, {"source": SRC, "target": "/t/"}]},
     "sandbox.mounts[1].target"),
    ("mount read_only string", {"mounts": [{"source": SRC, "target": "/t", "read_only": "yes"}]},
     "sandbox.mounts[0].read_only"),
    ("mount unknown key", {"mounts": [{"source": SRC, "target": "/t", "readonly": True}]},
     "sandbox.mounts[0].readonly"),
    ("sandbox unknown key", {"network": "host"}, "sandbox.network"),
]


@pytest.mark.parametrize("name,changes,field", SANDBOX_CASES, ids=[case[0] for case in SANDBOX_CASES])
def test_invalid_sandboxes_answer_422_naming_the_field(runner: Runner, tmp_path: Path, name, changes, field):
    source = tmp_path / "source"
    source.mkdir()
    # ASCII JSON: a lone surrogate stays a \ud800 escape
    body = json.dumps(sandbox_body(tmp_path, **changes)).replace(SRC, str(source))
    result = runner.client.simulate_post("/tasks/submit", body=body, content_type="application/json")
    assert result.status_code == 422, result.text
    assert result.json["field"] == field
    assert result.json["detail"].startswith(f"{field}: ")


def test_sandbox_is_required_and_must_be_an_object(runner: Runner, tmp_path: Path):
    body = sandbox_body(tmp_path)
    for value, expected in ((..., "sandbox"), ("busybox", "sandbox")):
        changed = dict(body)
        if value is ...:
            del changed["sandbox"]
        else:
            changed["sandbox"] = value
        result = runner.client.simulate_post("/tasks/submit", json=changed)
        assert (result.status_code, result.json["field"]) == (422, expected)


def test_mount_roots_limit_what_may_be_mounted(make_runner, tmp_path: Path, tmp_path_factory):
    allowed = tmp_path / "allowed"
    (allowed / "project").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)  # inside by name, outside once resolved
    runner = make_runner(docker=DockerSettings(mount_roots=(str(allowed),), pull="never"))
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # beside this test's directory, not holding the data dir
    for index, source in ((0, outside), (0, allowed / "escape"), (0, elsewhere)):
        result = runner.client.simulate_post("/tasks/submit", json=sandbox_body(
            tmp_path, mounts=[{"source": str(source), "target": "/m"}]))
        assert result.status_code == 422, result.text
        assert result.json["field"] == f"sandbox.mounts[{index}].source"
        assert "HOST_RUNNER_SANDBOX_MOUNT_ROOTS" in result.json["detail"]
    accepted = runner.client.simulate_post("/tasks/submit", json=sandbox_body(
        tmp_path, image=ABSENT_IMAGE, mounts=[{"source": str(allowed / "project"), "target": "/m"}]))
    assert accepted.status_code == 202, accepted.text
    runner.wait_status("t-1")  # it fails (no such image, or no engine here): nothing is left running


def test_other_modes_ignore_a_sandbox(runner: Runner):
    result = runner.submit(task_id="not-boxed", sandbox={"image": "--bad", "whatever": 1})
    assert result.status_code == 202, result.text
    assert runner.wait_status("not-boxed", "success")["executor"] == "mock"


# --- pieces ------------------------------------------------------------------------------------------------------
def test_create_args_put_every_option_before_the_image_and_the_command_after_it():
    spec = SandboxSpec(image="busybox:1.36", command=("--not-an-option", "-rf"), workdir="/w",
                       env=(("A", "1 2"),), mounts=(Mount("/src,x", "/dst", True),))
    args = create_args(DockerSettings(), spec, "host-runner-t-r-0123abcd", {LABEL_TASK: "t"})
    separator = args.index("--")
    assert args[separator + 1:] == ["busybox:1.36", "--not-an-option", "-rf"]
    options = args[:separator]
    for flag in ("--read-only", "--init"):
        assert flag in options
    pairs = list(zip(options, options[1:]))
    for pair in (("--name", "host-runner-t-r-0123abcd"), ("--cap-drop", "ALL"), ("--network", "none"),
                 ("--security-opt", "no-new-privileges"), ("--pids-limit", "256"), ("--memory", "2g"),
                 ("--cpus", "2"), ("--tmpfs", "/tmp"), ("--workdir", "/w"), ("--env", "A=1 2"),
                 ("--env", "HOST_RUNNER_PROMPT"), ("--pull", "missing"), ("--label", f"{LABEL_TASK}=t")):
        assert pair in pairs
    assert mount_option(Mount("/src,x", "/dst", True)) == '"type=bind","source=/src,x","target=/dst","readonly"'
    assert mount_option(Mount('/a"b', "/c")) == '"type=bind","source=/a""b","target=/c"'


def test_docker_settings_are_read_from_the_environment(tmp_path: Path):
    config = load_config({
        "HOST_RUNNER_DOCKER_BIN": "/opt/docker", "HOST_RUNNER_DOCKER_PULL": "never",
        "HOST_RUNNER_DOCKER_TIMEOUT_SECONDS": "30", "HOST_RUNNER_DOCKER_READ_ONLY": "false",
        "HOST_RUNNER_DOCKER_TMPFS": "/tmp:size=64m /run", "HOST_RUNNER_DOCKER_CAP_DROP_ALL": "no",
        "HOST_RUNNER_DOCKER_NO_NEW_PRIVILEGES": "0", "HOST_RUNNER_DOCKER_NETWORK": "sandbox-net",
        "HOST_RUNNER_DOCKER_PIDS_LIMIT": "0", "HOST_RUNNER_DOCKER_MEMORY": "512M", "HOST_RUNNER_DOCKER_CPUS": "1.5",
        "HOST_RUNNER_DOCKER_INIT": "off", "HOST_RUNNER_SANDBOX_MOUNT_ROOTS": "/srv/a:/srv/b",
        "HOST_RUNNER_INSTANCE_ID": "runner-7",
    })
    assert config.docker == DockerSettings(
        binary="/opt/docker", pull="never", timeout_seconds=30, read_only=False, tmpfs=("/tmp:size=64m", "/run"),
        cap_drop_all=False, no_new_privileges=False, network="sandbox-net", pids_limit=0, memory="512m", cpus=1.5,
        init=False, mount_roots=("/srv/a", "/srv/b"),
    )
    assert config.instance_id == "runner-7"
    assert load_config({"HOST_RUNNER_DOCKER_TMPFS": "none"}).docker.tmpfs == ()
    assert load_config({}).docker == DockerSettings()


@pytest.mark.parametrize("variable,value", [
    ("HOST_RUNNER_DOCKER_PULL", "sometimes"), ("HOST_RUNNER_DOCKER_TIMEOUT_SECONDS", "0"),
    ("HOST_RUNNER_DOCKER_READ_ONLY", "maybe"), ("HOST_RUNNER_DOCKER_TMPFS", "tmp"),
    ("HOST_RUNNER_DOCKER_NETWORK", "--privileged"), ("HOST_RUNNER_DOCKER_PIDS_LIMIT", "-1"),
    ("HOST_RUNNER_DOCKER_MEMORY", "lots"), ("HOST_RUNNER_DOCKER_CPUS", "x"), ("HOST_RUNNER_DOCKER_INIT", "2"),
    ("HOST_RUNNER_SANDBOX_MOUNT_ROOTS", "relative/dir"), ("HOST_RUNNER_INSTANCE_ID", "-bad id"),
])
def test_bad_docker_settings_stop_the_service_naming_the_variable(variable: str, value: str):
    with pytest.raises(ConfigError) as raised:
        load_config({variable: value})
    assert variable in str(raised.value)
