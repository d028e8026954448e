"""Choosing the cgroup backend at start, and the cgroup v2 path as far as this machine allows: its unified mount
has no controllers (they are all bound to v1), so v2 is tested for membership, ``cgroup.kill``, CPU accounting
(cpu.stat is there without the cpu controller), removal and re-adoption; a limit needs a controller, so with v2
here a limit refuses the start naming its setting. The v2 limit files themselves (memory.max, pids.max, cpu.max,
memory.events, memory.peak, pids.peak) are not exercised on this machine (see the README, Resource limits)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from host_runner.limits import prepare_cgroups
from host_runner.ops.config import Config, ConfigError, load_config
from host_runner.ops.setting_parsers import ConfigError as SettingError
from host_runner.store.sqlite import Store
from support.cgroups import TEST_CGROUP_ROOT, cgroup_directories, in_cgroup, v2_mount
from support.runner import shell_runner
from support.waiting import wait_for

DAEMON = ("setsid sh -c 'trap \"\" TERM; (trap \"\" TERM; exec sleep 300) & echo $! > \"$0\"; exit 0' \"$1\"; "
          "while [ ! -s \"$1\" ]; do sleep 0.05; done; grep '^0::' /proc/self/cgroup; exec sleep 300")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def outsider() -> subprocess.Popen[bytes]:
    """A process of the test's own (no descendant of any wrapper) that ignores SIGTERM, once it does."""
    process = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                "signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"],
                               start_new_session=True, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def test_v2_puts_a_task_in_its_cgroup_and_cancel_kills_all_of_it_with_cgroup_kill(make_runner, tmp_path):
    mount = v2_mount()
    runner = shell_runner(make_runner, DAEMON.replace('"$1"', f'"{tmp_path}/daemon.pid"'), cgroups="v2")
    tree = runner.system.config.cgroup_tree
    assert tree is not None and tree.version == 2
    assert str(tree.parent).startswith(str(mount / TEST_CGROUP_ROOT.strip("/")))
    assert runner.submit(task_id="t").status_code == 202
    record = wait_for(lambda: (r := runner.get("t"))["stdout"] and r, 15, what="the task's cgroup line")
    directory = cgroup_directories(tree, "t")[0]
    assert record["stdout"] == f"0::/{directory.relative_to(mount)}\n"  # the command ran inside it
    daemon = int((tmp_path / "daemon.pid").read_text())
    stranger = outsider()
    try:
        (directory / "cgroup.procs").write_text(str(stranger.pid))
        assert {daemon, stranger.pid} <= set(in_cgroup([directory]))
        assert runner.cancel("t").status_code == 200
        ended = runner.wait_status("t", timeout=20)
        assert ended["status"] == "canceled" and ended["cpu_seconds"] is not None
        assert ended["memory_peak_bytes"] is None and ended["pids_peak"] is None  # no controllers here
        assert stranger.wait(timeout=10) == -9
        assert not alive(daemon) and not directory.exists()
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait()


def test_v2_readopts_a_task_by_its_cgroup_after_a_restart(make_runner, tmp_path):
    v2_mount()
    runner = shell_runner(make_runner, DAEMON.replace('"$1"', f'"{tmp_path}/daemon.pid"'), cgroups="v2")
    assert runner.submit(task_id="t").status_code == 202
    wait_for(lambda: runner.get("t")["stdout"], 15, what="the task to run")
    daemon = int((tmp_path / "daemon.pid").read_text())
    runner.system.stop()
    again = runner.restart()
    directory = cgroup_directories(again.system.config.cgroup_tree, "t")[0]
    assert daemon in in_cgroup([directory])
    assert again.cancel("t").status_code == 200
    assert again.wait_status("t", timeout=20)["status"] == "canceled"
    assert not alive(daemon) and not directory.exists()


def test_a_limit_that_v2_here_cannot_enforce_refuses_the_start_naming_the_setting(tmp_path):
    mount = v2_mount()
    if "pids" in (mount / "cgroup.controllers").read_text().split():
        pytest.skip("this machine's cgroup2 offers pids: the refusal is for a hierarchy without it")
    with pytest.raises(ConfigError, match="HOST_RUNNER_TASK_PIDS_MAX is set, but the pids controller"):
        prepare_cgroups(Config(data_dir=tmp_path, cgroups="v2", cgroup_root=TEST_CGROUP_ROOT, task_pids_max=64),
                        Store(tmp_path / "db"))


def test_without_cgroups_a_runner_without_limits_works_and_says_so_and_one_with_limits_refuses(make_runner, tmp_path):
    # A root below a file: no hierarchy lets the runner make its cgroups there.
    unusable = "/cgroup.procs/nowhere"
    runner = shell_runner(make_runner, "echo ran", cgroup_root=unusable)
    assert runner.system.config.cgroup_tree is None
    health = runner.client.simulate_get("/health").json
    assert health["cgroups"].startswith("unavailable (")
    assert runner.submit(task_id="t").status_code == 202
    assert runner.wait_status("t")["status"] == "success"
    with pytest.raises(ConfigError, match="HOST_RUNNER_TASK_MEMORY_MAX is set, but task cgroups are unavailable"):
        prepare_cgroups(Config(data_dir=tmp_path, cgroup_root=unusable, task_memory_max=64 * 1024**2),
                        Store(tmp_path / "db"))


def test_cgroups_off_runs_as_before_and_health_says_off(make_runner):
    runner = shell_runner(make_runner, "echo ran", cgroups="off")
    assert runner.client.simulate_get("/health").json["cgroups"] == "off (HOST_RUNNER_CGROUPS=off)"
    assert runner.submit(task_id="t").status_code == 202
    record = runner.wait_status("t")
    assert record["status"] == "success" and "pids_peak" not in record


@pytest.mark.parametrize(("variable", "value"), [
    ("HOST_RUNNER_TASK_MEMORY_MAX", "lots"), ("HOST_RUNNER_TASK_MEMORY_MAX", "1M"),
    ("HOST_RUNNER_TASK_PIDS_MAX", "-1"), ("HOST_RUNNER_TASK_CPUS", "many"), ("HOST_RUNNER_CGROUPS", "v3"),
    ("HOST_RUNNER_CGROUP_ROOT", "relative/path"), ("HOST_RUNNER_CGROUP_ROOT", "/a/../b"),
])
def test_bad_limit_settings_refuse_the_start_naming_the_variable(variable, value):
    with pytest.raises(SettingError, match=variable):
        load_config({variable: value})


def test_limit_settings_are_read():
    config = load_config({"HOST_RUNNER_TASK_MEMORY_MAX": "4G", "HOST_RUNNER_TASK_PIDS_MAX": "512",
                          "HOST_RUNNER_TASK_CPUS": "1.5", "HOST_RUNNER_CGROUP_ROOT": "/host-runner/"})
    assert (config.task_memory_max, config.task_pids_max, config.task_cpus) == (4 * 1024**3, 512, 1.5)
    assert config.cgroup_root == "/host-runner"
    with pytest.raises(SettingError, match="HOST_RUNNER_CGROUPS=off, but a task limit is set"):
        load_config({"HOST_RUNNER_CGROUPS": "off", "HOST_RUNNER_TASK_PIDS_MAX": "10"})
