"""The runner's caps (issue 17): the queue (HOST_RUNNER_MAX_QUEUED), ``agent_input`` (64 KiB, agent executors
only), each output stream (HOST_RUNNER_MAX_OUTPUT_BYTES) and the data disk's free space
(HOST_RUNNER_MIN_FREE_BYTES). Real processes; every answer checked against the OpenAPI document."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from pathlib import Path

from host_runner.domain.request import TaskRequest
from host_runner.run.stopping import group_alive
from support.runner import Runner, shell_runner
from support.waiting import wait_for


def test_a_submit_beyond_the_queue_cap_is_429_and_stores_nothing(make_runner: Callable[..., Runner]):
    runner = shell_runner(make_runner, "exec sleep 60", max_concurrency=1, max_queued=2)
    assert runner.submit(task_id="q1").status_code == 202
    runner.wait_status("q1", "running")
    assert [runner.submit(task_id=f"q{n}").status_code for n in (2, 3)] == [202, 202]
    refused = runner.submit(task_id="q4")
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "HOST_RUNNER_MAX_QUEUED" in refused.json["detail"]
    assert runner.client.simulate_get("/tasks/q4").status_code == 404  # nothing stored
    # A retry of a queued task is still answered (200, its record): it adds nothing to the queue.
    assert runner.submit(task_id="q3").status_code == 200
    assert runner.cancel("q2").status_code == 200
    assert runner.submit(task_id="q4").status_code == 202  # room again


def test_queued_requests_are_read_from_the_store_not_kept_in_memory(make_runner: Callable[..., Runner]):
    """200 queued submits of 1 MiB took the worker from 41 to 291 MB: only the running ones' requests may be
    held; a queued one is loaded when it is admitted (and runs with its own prompt)."""
    runner = shell_runner(make_runner, 'printf "%s" "$HOST_RUNNER_PROMPT" | wc -c; exec sleep 60', max_concurrency=1)
    prompts = {f"m{n}": f"{n}:" + "x" * 100_000 for n in range(30)}
    for task_id, prompt in prompts.items():
        assert runner.submit(task_id=task_id, prompt=prompt).status_code == 202
    runner.wait_status("m0", "running")
    gc.collect()
    alive = [obj for obj in gc.get_objects() if isinstance(obj, TaskRequest) and len(obj.prompt) > 100_000]
    assert len(alive) <= 3, f"{len(alive)} large requests held in memory"
    del alive
    assert runner.cancel("m0").status_code == 200
    runner.wait_status("m1", "running")
    wait_for(lambda: runner.get("m1")["stdout"].strip() == str(len(prompts["m1"])), what="m1's prompt to be read")
    assert runner.get("m2")["queue_position"] == 1


def test_agent_input_is_capped_and_only_for_agent_executors(make_runner: Callable[..., Runner]):
    runner = make_runner(allowed_executors=("mock", "shell", "agent"), agent_cmd=("true",))
    big = {"script": "x" * (64 * 1024)}
    for body in ({"executor": "agent", "group": "g", "agent_input": big},
                 {"executor": "mock", "agent_input": {"chatJid": "a"}},
                 {"executor": "shell", "agent_input": {}}):
        refused = runner.submit(task_id="a1", **body)
        assert refused.status_code == 422 and refused.json["field"] == "agent_input", refused.text
    assert runner.client.simulate_get("/tasks/a1").status_code == 404
    small = {"script": "x" * (60 * 1024)}
    assert runner.submit(task_id="a2", executor="agent", group="g", agent_input=small).status_code == 202


def test_output_past_the_cap_stops_the_run(make_runner: Callable[..., Runner]):
    limit = 1_000_000
    runner = shell_runner(make_runner, 'if [ "$HOST_RUNNER_PROMPT" = err ]; then exec >&2; fi; '
                          "head -c 5000000 /dev/zero; exec sleep 60", max_output_bytes=limit)
    for task_id, stream in (("o1", "stdout"), ("o2", "stderr")):
        assert runner.submit(task_id=task_id, prompt="out" if stream == "stdout" else "err").status_code == 202
        record = runner.wait_status(task_id, timeout=30)
        assert record["status"] == "failed", record
        assert record["message"] == f"output limit exceeded ({limit} bytes on {stream})", record
        assert not group_alive(record["pid"])
        logs = runner.client.simulate_get(f"/tasks/{task_id}/logs", params={"stream": stream})
        assert logs.status_code == 200 and logs.content == b"\0" * limit  # the first N bytes, cut back to N
    # under the cap nothing happens
    quiet = shell_runner(make_runner, "head -c 1000 /dev/zero", max_output_bytes=limit,
                         data_dir=Path(str(runner.config.data_dir) + "-2"))
    assert quiet.submit(task_id="o3").status_code == 202
    assert quiet.wait_status("o3")["status"] == "success"


def test_low_free_disk_refuses_submits_with_507_and_health_says_so(make_runner: Callable[..., Runner],
                                                                     tmp_path: Path):
    runner = make_runner(mock_seconds=0.05)
    assert runner.client.simulate_get("/health").json == {"status": "ok", "disk": "ok"}
    low = runner.restart(min_free_bytes=shutil.disk_usage(tmp_path).total + 1)  # above the real free space
    health = low.client.simulate_get("/health")
    assert health.status_code == 200 and health.json == {"status": "ok", "disk": "low"}
    refused = low.submit(task_id="d1")
    assert refused.status_code == 507 and "HOST_RUNNER_MIN_FREE_BYTES" in refused.json["detail"], refused.text
    assert low.client.simulate_get("/tasks/d1").status_code == 404
    assert not (low.config.runs_dir / "d1").exists()
