"""Host tasks in cgroups (v1, what this machine offers with its pids, memory, cpu and freezer hierarchies): limits
that stop a fork bomb and a memory hog without hurting the runner or other tasks, a cancel that reaches every
process of the task (a setsid double-forked daemon that ignores SIGTERM, a process that is no descendant of the
wrapper), re-adoption after a restart, the cgroup removed after each task, and the orphan sweep at start.

Every dangerous command checks its own cgroup's limit first and refuses to run without it: on this shared machine
a fork bomb must never run unbounded, whatever went wrong."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from host_runner.domain.limits import TaskLimits, cgroup_name
from support.cgroups import alive, cgroup_directories, daemon_script, in_cgroup, killed, outsider, require_v1
from support.runner import shell_runner
from support.waiting import wait_for

#: Refuses to go on unless this process's pids cgroup allows exactly $1 processes.
PIDS_GUARD = ('cg=$(sed -n "s/^[0-9]*:pids://p" /proc/self/cgroup); '
              '[ "$(cat /sys/fs/cgroup/pids$cg/pids.max)" = "$1" ] || { echo "no pids limit: refusing" >&2; exit 3; }; ')
FORK_BOMB = PIDS_GUARD + 'exec bash -c \'bomb() { bomb | bomb & }; bomb; sleep 300\''
MEMORY_HOG = """
import re, sys
path = re.search(r"^\\d+:memory:(.*)$", open("/proc/self/cgroup").read(), re.M).group(1)
limit = int(open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read())
if limit != 64 * 1024 * 1024:
    sys.exit(f"no memory limit ({limit}): refusing")
hoard = []
while True:
    hoard.append(b"x" * (4 << 20))
"""
@pytest.fixture(autouse=True)
def _v1() -> None:
    require_v1("pids", "memory", "freezer")


def test_a_fork_bomb_fails_its_task_while_the_runner_and_other_tasks_go_on(make_runner):
    runner = shell_runner(make_runner, '[ "$HOST_RUNNER_PROMPT" = bomb ] || { echo calm; exit 0; }; '
                          + FORK_BOMB.replace('"$1"', "64"), task_pids_max=64, kill_grace_seconds=1.0)
    assert runner.submit(task_id="bomb", prompt="bomb", timeout_seconds=4).status_code == 202
    wait_for(lambda: "Resource temporarily unavailable" in runner.get("bomb")["stderr"], 20, what="fork errors")
    assert runner.submit(task_id="calm", prompt="calm").status_code == 202  # the runner still serves and runs
    calm = runner.wait_status("calm", timeout=20)
    assert (calm["status"], calm["stdout"]) == ("success", "calm\n")
    bomb = runner.wait_status("bomb", timeout=40)
    assert bomb["status"] == "failed" and "timed out" in bomb["message"]
    assert "Resource temporarily unavailable" in bomb["stderr"]  # the command's own fork errors
    assert 32 <= bomb["pids_peak"] <= 64
    directories = cgroup_directories(runner.system.config.cgroup_tree, "bomb")
    assert not any(directory.exists() for directory in directories)  # gone, so nothing is left in it
    assert runner.get("calm")["pids_peak"] >= 1


def test_a_memory_hog_ends_failed_out_of_memory_naming_the_limit(make_runner):
    runner = make_runner(executor="shell", cmd_template=(sys.executable, "-c", MEMORY_HOG),
                         task_memory_max=64 * 1024**2)
    assert runner.submit(task_id="hog", timeout_seconds=60).status_code == 202
    record = runner.wait_status("hog", timeout=60)
    assert record["status"] == "failed" and record["failure_reason"] == "oom", record
    assert record["message"] == "out of memory: killed at the task's memory limit (64M)"
    assert 32 * 1024**2 <= record["memory_peak_bytes"] <= 64 * 1024**2
    assert not any(d.exists() for d in cgroup_directories(runner.system.config.cgroup_tree, "hog"))
    metrics = runner.client.simulate_get("/metrics").text
    assert 'host_runner_task_oom_kills_total{executor="shell"} 1.0' in metrics
    assert 'host_runner_task_memory_peak_bytes_count{executor="shell"} 1.0' in metrics


def test_cancel_kills_every_process_of_the_cgroup_also_those_the_wrapper_cannot_reach(make_runner, tmp_path):
    runner = shell_runner(make_runner, daemon_script(tmp_path / "daemon.pid"))
    assert runner.submit(task_id="t").status_code == 202
    wait_for(lambda: runner.get("t")["stdout"] == "started\n", 15, what="the daemon")
    daemon = int((tmp_path / "daemon.pid").read_text())
    directories = cgroup_directories(runner.system.config.cgroup_tree, "t")
    with outsider() as stranger:
        for directory in directories:  # joins the task's cgroup from outside, as a process of another daemon would
            (directory / "cgroup.procs").write_text(str(stranger.pid))
        assert {daemon, stranger.pid} <= set(in_cgroup(directories))
        assert runner.cancel("t").status_code == 200
        record = runner.wait_status("t", timeout=20)
        assert record["status"] == "canceled"
        assert killed(stranger) and not alive(daemon)
        assert not any(directory.exists() for directory in directories)
        assert record["cpu_seconds"] is not None and record["pids_peak"] >= 3


def test_a_restarted_runner_cancels_a_readopted_task_with_its_whole_cgroup(make_runner, tmp_path):
    runner = shell_runner(make_runner, daemon_script(tmp_path / "daemon.pid"))
    assert runner.submit(task_id="t").status_code == 202
    wait_for(lambda: runner.get("t")["stdout"] == "started\n", 15, what="the daemon")
    daemon = int((tmp_path / "daemon.pid").read_text())
    runner.system.stop()  # the task keeps running, as under systemd's KillMode=process
    again = runner.restart()
    directories = cgroup_directories(again.system.config.cgroup_tree, "t")
    assert daemon in in_cgroup(directories)  # found by name: the orphan sweep kept it for the adopted run
    with outsider() as stranger:
        for directory in directories:
            (directory / "cgroup.procs").write_text(str(stranger.pid))
        assert again.cancel("t").status_code == 200
        assert again.wait_status("t", timeout=20)["status"] == "canceled"
        assert killed(stranger) and not alive(daemon)
        assert not any(directory.exists() for directory in directories)


def test_a_task_runs_with_the_lower_limits_it_asked_for(make_runner):
    runner = shell_runner(make_runner, PIDS_GUARD.replace('"$1"', "20") + 'echo "$(cat /sys/fs/cgroup/memory$(sed -n '
                          '"s/^[0-9]*:memory://p" /proc/self/cgroup)/memory.limit_in_bytes)"',
                          task_pids_max=64, task_memory_max=256 * 1024**2, task_cpus=1.5)
    assert runner.submit(task_id="t", limits={"pids": 20, "memory": "128M"}).status_code == 202
    record = runner.wait_status("t")
    assert (record["status"], record["stdout"]) == ("success", f"{128 * 1024**2}\n"), record
    refused = runner.submit(task_id="u", limits={"cpus": 2})
    assert refused.status_code == 422 and refused.json["field"] == "limits.cpus"
    assert refused.json["detail"] == "limits.cpus: must be at most 1.5 (HOST_RUNNER_TASK_CPUS)"


def test_only_a_task_with_a_cpu_limit_gets_a_cgroup_in_the_cpu_hierarchy(make_runner):
    """The cpu hierarchy only enforces the quota: a task without one is not moved there (one mkdir, move and rmdir
    fewer per task, issue 22); cpuacct still counts its CPU time."""
    require_v1("cpu", "cpuacct")
    runner = shell_runner(make_runner, "sleep 30")  # no HOST_RUNNER_TASK_CPUS: a task has no CPU limit of its own
    tree = runner.system.config.cgroup_tree
    assert runner.submit(task_id="limited", limits={"cpus": 0.5}).status_code == 202
    assert runner.submit(task_id="free").status_code == 202
    runner.wait_status("limited", "running")
    runner.wait_status("free", "running")
    limited = cgroup_directories(tree, "limited", cpu_limit=True)
    cpu = next(directory for directory in limited if "/cpu/" in str(directory))
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    free = cgroup_directories(tree, "free", cpu_limit=True)
    assert [directory.exists() for directory in free] == [not ("/cpu/" in str(d)) for d in free]
    for task_id in ("limited", "free"):
        runner.cancel(task_id)
        record = runner.wait_status(task_id, "canceled")
        assert record["cpu_seconds"] is not None
    assert not any(directory.exists() for directory in limited + free)


def test_the_orphan_sweep_at_start_kills_and_removes_task_cgroups_no_task_owns(make_runner, tmp_path):
    runner = shell_runner(make_runner, "exit 0")
    tree = runner.system.config.cgroup_tree
    # What a runner killed while a run of no task it knows was in its cgroup leaves behind.
    orphan = tree.create(cgroup_name("gone", "run-1"), TaskLimits())
    stray = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        orphan.add(stray.pid)
        again = runner.restart()
        assert stray.wait(timeout=10) == -signal.SIGKILL
        directories = cgroup_directories(again.system.config.cgroup_tree, "gone")
        assert not any(directory.exists() for directory in directories)
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def test_every_task_leaves_no_cgroup_behind_and_the_runner_none_at_stop(make_runner):
    runner = shell_runner(make_runner, "sleep 0.2 & echo done")
    tree = runner.system.config.cgroup_tree
    for index in range(3):
        assert runner.submit(task_id=f"t{index}").status_code == 202
    for index in range(3):
        assert runner.wait_status(f"t{index}")["status"] == "success"
    assert tree.names() == []
    runner.stop()
    assert not any(parent.exists() for parent in tree.parents.values())
