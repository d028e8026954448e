"""Choosing the cgroup backend at start, and the cgroup v2 path as far as this machine allows: its unified mount
has no controllers (they are all bound to v1), so v2 is tested for membership, ``cgroup.kill``, CPU accounting
(cpu.stat is there without the cpu controller), removal and re-adoption; a limit needs a controller, so with v2
here a limit refuses the start naming its setting. The v2 limit files themselves (memory.max, pids.max, cpu.max,
memory.events, memory.peak, pids.peak) are not exercised on this machine (see the README, Resource limits)."""

from __future__ import annotations


import pytest

from host_runner.limits import prepare_cgroups
from host_runner.ops.config import Config, ConfigError, load_config
from host_runner.store.sqlite import Store
from support.cgroups import (
    TEST_CGROUP_ROOT, alive, cgroup_directories, daemon_script, in_cgroup, killed, outsider, v2_mount,
)
from support.runner import shell_runner
from support.waiting import wait_for

def test_v2_puts_a_task_in_its_cgroup_and_cancel_kills_all_of_it_with_cgroup_kill(make_runner, tmp_path):
    mount = v2_mount()
    runner = shell_runner(make_runner, daemon_script(tmp_path / "daemon.pid", "grep '^0::' /proc/self/cgroup"),
                          cgroups="v2")
    tree = runner.system.config.cgroup_tree
    assert tree is not None and tree.version == 2
    assert str(tree.parent).startswith(str(mount / TEST_CGROUP_ROOT.strip("/")))
    assert runner.submit(task_id="t").status_code == 202
    record = wait_for(lambda: (r := runner.get("t"))["stdout"] and r, 15, what="the task's cgroup line")
    directory = cgroup_directories(tree, "t")[0]
    assert record["stdout"] == f"0::/{directory.relative_to(mount)}\n"  # the command ran inside it
    daemon = int((tmp_path / "daemon.pid").read_text())
    with outsider() as stranger:
        (directory / "cgroup.procs").write_text(str(stranger.pid))
        assert {daemon, stranger.pid} <= set(in_cgroup([directory]))
        assert runner.cancel("t").status_code == 200
        ended = runner.wait_status("t", timeout=20)
        assert ended["status"] == "canceled" and ended["cpu_seconds"] is not None
        assert ended["memory_peak_bytes"] is None and ended["pids_peak"] is None  # no controllers here
        assert killed(stranger) and not alive(daemon) and not directory.exists()


def test_v2_readopts_a_task_by_its_cgroup_after_a_restart(make_runner, tmp_path):
    v2_mount()
    runner = shell_runner(make_runner, daemon_script(tmp_path / "daemon.pid"), cgroups="v2")
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
    with pytest.raises(ConfigError, match=variable):
        load_config({variable: value})


def test_limit_settings_are_read():
    config = load_config({"HOST_RUNNER_TASK_MEMORY_MAX": "4G", "HOST_RUNNER_TASK_PIDS_MAX": "512",
                          "HOST_RUNNER_TASK_CPUS": "1.5", "HOST_RUNNER_CGROUP_ROOT": "/host-runner/"})
    assert (config.task_memory_max, config.task_pids_max, config.task_cpus) == (4 * 1024**3, 512, 1.5)
    assert config.cgroup_root == "/host-runner"
    with pytest.raises(ConfigError, match="HOST_RUNNER_CGROUPS=off, but a task limit is set"):
        load_config({"HOST_RUNNER_CGROUPS": "off", "HOST_RUNNER_TASK_PIDS_MAX": "10"})
