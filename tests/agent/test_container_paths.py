"""HOST_RUNNER_AGENT_PATHS=container: an agent-runner that hard-codes its container's /workspace paths runs on
the host unchanged (tests/bin/container-agent-runner is written like NanoClaw's), as root here; the same
namespace as an unprivileged user is tested at the wrapper in tests/run/test_namespace_wrapper.py."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from host_runner.ops.config import Config, ConfigError
from host_runner.ops.setting_parsers import ExtraDir
from host_runner.run.wrapper_build import build_native_wrapper, prepare_wrapper
from support.paths import FAKE_BIN
from support.processes import pids_in_group
from support.runner import Runner
from support.waiting import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="these run the runner as root (as CI does)")

#: The interpreter itself, not a venv's link to it: a checkout under /tmp would be hidden by the private /tmp.
PYTHON = os.path.realpath(sys.executable)
#: The agent's source travels in argv for the same reason (real agent-runners live in the user's home).
AGENT_CMD = (PYTHON, "-c", (FAKE_BIN / "container-agent-runner").read_text())


def container_runner(make_runner: Any, tmp_path: Path, **settings: Any) -> Runner:
    shared = tmp_path / "shared"
    (shared / "global").mkdir(parents=True)
    (shared / "global" / "CLAUDE.md").write_text("global context\n")
    for name in ("docs", "notes"):
        (shared / name).mkdir()
    settings.setdefault("agent_global_dir", shared / "global")
    settings.setdefault("agent_extra_dirs", (ExtraDir("docs", shared / "docs"), ExtraDir("notes", shared / "notes")))
    return make_runner(executor="agent", agent_cmd=AGENT_CMD, agent_paths="container", agent_idle_seconds=600,
                       agent_close_grace_seconds=10, **settings)


def submit(runner: Runner, tmp_path: Path, task_id: str, prompt: str = "hello") -> Path:
    project = tmp_path / f"project-{task_id}"
    project.mkdir()
    answer = runner.submit(task_id=task_id, prompt=prompt, group="team", execution_mode="shared-workspace",
                           workspace={"project_id": 1, "project_root": str(project), "lock_paths": [str(project)]})
    assert answer.status_code == 202, answer.text
    return project


def post(runner: Runner, task_id: str, what: str, body: dict[str, Any] | None = None) -> Any:
    return runner.client.simulate_post(f"/tasks/{task_id}/{what}", json=body, headers=runner.headers())


def results(runner: Runner, task_id: str, count: int) -> list[Any]:
    record = wait_for(lambda: (r := runner.get(task_id)).get("frames", 0) >= count and r,
                      what=f"{count} frames from {task_id}")
    return [output["result"] for output in record["outputs"]]


def workspace_listing() -> list[str] | None:
    """What the host has at /workspace (None: nothing, as it should stay)."""
    return sorted(os.listdir("/workspace")) if os.path.lexists("/workspace") else None


def mount_namespaces_in_use() -> set[str]:
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found.add(os.readlink(f"/proc/{pid}/ns/mnt"))
        except OSError:
            pass
    return found


def test_an_agent_written_for_its_container_runs_on_the_host_unchanged(make_runner, tmp_path: Path):
    host_workspace = workspace_listing()
    runner = container_runner(make_runner, tmp_path)
    project = submit(runner, tmp_path, "nano")
    report = json.loads(results(runner, "nano", 2)[0])
    assert report["cwd"] == "/workspace/group" and report["uid"] == 0
    assert report["ipc_dir"] == "/workspace/ipc"
    assert report["global"] == "global context\n" and report["global_writable"] is False
    assert report["extra"] == ["docs", "notes"]
    assert report["tmp_at_start"] == []  # a private /tmp: nothing of the host's
    assert report["mnt_ns"] != os.readlink("/proc/self/ns/mnt")

    # What it writes at its container paths lands in the task's own directories.
    assert (project / "conversations" / "conversation-1.md").read_text() == "**User**: hello\n"
    run_dir = Path(runner.get("nano")["logs"]["dir"])
    sent = lambda: [json.loads(p.read_text())["text"] for p in sorted((run_dir / "ipc" / "messages").glob("*.json"))]
    assert sent() == ["started"]

    # Messages and _close written by the runner reach it at /workspace/ipc/input.
    assert post(runner, "nano", "messages", {"text": "ping"}).status_code == 202
    assert results(runner, "nano", 4)[2] == "echo: ping"
    assert sent() == ["started", "echo: ping"]
    assert post(runner, "nano", "close").status_code == 202
    record = runner.wait_status("nano", "success")
    assert record["exit_code"] == 0 and "Close sentinel received" in record["stderr"]

    # Nothing of the namespace outlives the task, and the host's /workspace was never made.
    wait_for(lambda: report["mnt_ns"] not in mount_namespaces_in_use(), timeout=10, what="the namespace to end")
    assert workspace_listing() == host_workspace


def test_exit_status_and_cancel_are_as_for_other_tasks(make_runner, tmp_path: Path):
    runner = container_runner(make_runner, tmp_path, kill_grace_seconds=0.5)
    submit(runner, tmp_path, "three", prompt="exit:3")
    record = runner.wait_status("three", "failed")
    assert record["exit_code"] == 3

    submit(runner, tmp_path, "stubborn", prompt="ignore-term")
    report = json.loads(results(runner, "stubborn", 2)[0])
    pgid = runner.get("stubborn")["pid"]
    assert post(runner, "stubborn", "cancel").json["status"] == "canceled"
    wait_for(lambda: not pids_in_group(pgid), timeout=10, what="the agent's group to be gone")
    wait_for(lambda: report["mnt_ns"] not in mount_namespaces_in_use(), timeout=10, what="the namespace to end")


def test_a_restarted_runner_readopts_an_agent_in_its_namespace(make_runner, tmp_path: Path):
    runner = container_runner(make_runner, tmp_path)
    submit(runner, tmp_path, "kept")
    results(runner, "kept", 2)
    second = runner.restart()
    assert second.get("kept")["status"] == "running"
    assert post(second, "kept", "messages", {"text": "after the restart"}).status_code == 202
    assert results(second, "kept", 4)[2] == "echo: after the restart"
    assert post(second, "kept", "close").status_code == 202
    assert second.wait_status("kept", "success")["exit_code"] == 0


def test_container_paths_need_the_native_wrapper(tmp_path: Path):
    config = Config(data_dir=tmp_path / "data", agent_paths="container", wrapper="python")
    with pytest.raises(ConfigError, match="HOST_RUNNER_AGENT_PATHS=container needs the native task wrapper"):
        prepare_wrapper(config)


def test_a_runner_that_cannot_make_a_mount_namespace_refuses_to_start(tmp_path: Path):
    native = build_native_wrapper(tmp_path / "bin")
    # root without CAP_SYS_ADMIN (as in many containers): no mount namespace
    config = Config(data_dir=tmp_path / "data", agent_paths="container",
                    wrapper_argv=("setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", str(native)))
    with pytest.raises(ConfigError, match=r"HOST_RUNNER_AGENT_PATHS=container, but tasks cannot get a private "
                                          r"mount namespace here: .*CAP_SYS_ADMIN"):
        prepare_wrapper(config)
    assert prepare_wrapper(dataclasses.replace(config, wrapper_argv=(str(native),))).agent_paths == "container"
