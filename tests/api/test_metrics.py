"""GET /metrics: Prometheus text that follows what the runner does."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support.runner import Runner, shell_runner
from support.waiting import wait_for


def scrape(runner: Runner) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    result = runner.client.simulate_get("/metrics", headers=runner.headers())
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(result.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_change_as_tasks_run(make_runner, tmp_path: Path):
    go = tmp_path / "go"
    runner = shell_runner(make_runner, f"while [ ! -e {go} ]; do sleep 0.05; done; exit $HOST_RUNNER_PROMPT",
                          max_concurrency=1)
    before = scrape(runner)
    assert value(before, "host_runner_tasks_running") == 0
    assert value(before, "host_runner_tasks", status="success", executor="shell") == 0
    assert value(before, "host_runner_max_concurrency") == 1
    assert value(before, "host_runner_actor_up", actor="supervisor") == 1
    assert value(before, "host_runner_actors", **{"class": "SupervisorActor"}) >= 1

    runner.submit(task_id="m1", prompt="0")
    runner.submit(task_id="m2", prompt="4")
    runner.wait_status("m1", "running")
    during = scrape(runner)
    assert value(during, "host_runner_tasks_running") == 1
    assert value(during, "host_runner_tasks_queued") == 1
    assert value(during, "host_runner_tasks", status="running", executor="shell") == 1
    assert value(during, "host_runner_tasks", status="queued", executor="shell") == 1
    assert value(during, "host_runner_actors", **{"class": "TaskActor"}) >= 1

    go.touch()
    runner.wait_status("m1", "success")
    runner.wait_status("m2", "failed")
    after = wait_for(lambda: (s := scrape(runner)) and value(s, "host_runner_tasks_running") == 0 and s)
    assert value(after, "host_runner_tasks", status="success", executor="shell") == 1
    assert value(after, "host_runner_tasks", status="failed", executor="shell") == 1
    assert value(after, "host_runner_task_duration_seconds_count", executor="shell", status="success") == 1
    assert value(after, "host_runner_task_duration_seconds_count", executor="shell", status="failed") == 1
    assert value(after, "host_runner_task_duration_seconds_bucket", executor="shell", status="success",
                 le="+Inf") == 1
    assert value(after, "host_runner_task_duration_seconds_sum", executor="shell", status="success") > 0


def test_callback_metrics_count_deliveries_and_failures(make_runner, receiver):
    runner = make_runner(callback_max_attempts=2, mock_seconds=0)
    runner.submit(task_id="ok", status_callback_url=receiver.url)
    runner.wait_status("ok", "success")
    delivered = wait_for(lambda: (s := scrape(runner)) and value(s, "host_runner_callback_events_total",
                                                                 outcome="delivered") == 2 and s,
                         what="running and success to be delivered")
    assert value(delivered, "host_runner_callback_attempts_total", result="ok") == 2
    assert value(delivered, "host_runner_callback_delivery_seconds_count") == 2
    assert value(delivered, "host_runner_callback_pending") == 0

    receiver.responses = [503] * 4  # both events fail twice and are given up
    runner.submit(task_id="bad", status_callback_url=receiver.url)
    runner.wait_status("bad", "success")
    failed = wait_for(lambda: (s := scrape(runner)) and value(s, "host_runner_callback_events_total",
                                                              outcome="given_up") == 2 and s,
                      what="both events to be given up")
    assert value(failed, "host_runner_callback_attempts_total", result="failed") == 4
    assert value(failed, "host_runner_callback_delivery_seconds_count") == 4


def test_each_app_counts_its_own_runner(make_runner, tmp_path: Path):
    first = make_runner(mock_seconds=0)
    second = make_runner(mock_seconds=0, data_dir=tmp_path / "other")
    first.submit(task_id="only-here")
    first.wait_status("only-here", "success")
    assert value(scrape(first), "host_runner_tasks", status="success", executor="mock") == 1
    assert value(scrape(second), "host_runner_tasks", status="success", executor="mock") == 0
