"""``GET /metrics``: Prometheus text format, collected when scraped from what the actors already know.

Nothing here counts by itself: a scrape asks the service for :meth:`RunnerService.stats`, which asks the
SupervisorActor for its stats (runs per status and executor from the store, running/queued, durations of
ended runs) and the CallbackActor for its state (lanes and delivery counters), both at once with one short
deadline, and counts the live actors. Each app has its own ``CollectorRegistry``, so several apps in one
process (tests) do not share or collide. An actor that does not answer in time is shown as
``host_runner_actor_up{actor=...} 0`` and its series are left out of that scrape rather than delaying it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from actors.service import RunnerService, Stats
from api.task_output import FollowerSlots
from host_runner.domain.record import STATUSES
from host_runner.ops.config import Config
from host_runner.ops.stats import HistogramSnapshot

SCRAPE_TIMEOUT = 2.0


def _histogram(name: str, documentation: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, documentation, labels=labels)


def _add(family: HistogramMetricFamily, labels: list[str], snapshot: HistogramSnapshot) -> None:
    family.add_metric(labels, buckets=snapshot.cumulative(), sum_value=snapshot.total)


class RunnerCollector:
    """A prometheus_client collector over one runner's actors."""

    def __init__(self, service: RunnerService, config: Config, followers: FollowerSlots) -> None:
        self.service = service
        self.config = config
        self.followers = followers

    def describe(self) -> list[Metric]:
        return []  # registering must not ask actors; names are checked by the tests instead

    def collect(self) -> Iterator[Metric]:
        stats = self.service.stats(SCRAPE_TIMEOUT)
        up = GaugeMetricFamily("host_runner_actor_up", "1 if the actor answered this scrape in time", labels=["actor"])
        up.add_metric(["supervisor"], 1 if stats.tasks is not None else 0)
        if stats.has_callbacks:
            up.add_metric(["callbacks"], 1 if stats.callbacks is not None else 0)
        yield up
        if stats.tasks is not None:
            yield from self._task_metrics(stats.tasks)
        if stats.callbacks is not None:
            yield from self._callback_metrics(stats.callbacks)
        if stats.retention is not None:
            yield CounterMetricFamily("host_runner_pruned_runs", "Finished runs removed by retention (row, callback "
                                      "events, run directory) since the runner started",
                                      value=stats.retention["pruned_runs"])
            yield CounterMetricFamily("host_runner_pruned_callback_events", "Settled callback events removed with "
                                      "their runs since the runner started",
                                      value=stats.retention["pruned_callback_events"])
        actors = GaugeMetricFamily("host_runner_actors", "Live actors in the runner process", labels=["class"])
        for name, count in stats.actors.items():
            actors.add_metric([name], count)
        yield actors
        yield GaugeMetricFamily("host_runner_log_followers", "Clients following a task's log right now",
                                value=self.followers.active)

    def _task_metrics(self, stats: Stats) -> Iterator[Metric]:
        tasks = GaugeMetricFamily("host_runner_tasks", "Runs in the store by status and executor (every run of "
                                  "every task)", labels=["status", "executor"])
        runs = {(status, self.config.executor): 0 for status in STATUSES}  # every status shows, 0 included
        runs.update(stats.runs)
        for (status, executor), count in sorted(runs.items()):
            tasks.add_metric([status, executor], count)
        yield tasks
        yield GaugeMetricFamily("host_runner_tasks_running", "Tasks running now", value=stats.running)
        yield GaugeMetricFamily("host_runner_tasks_queued", "Tasks waiting for a free slot", value=stats.queued)
        yield GaugeMetricFamily("host_runner_max_concurrency", "HOST_RUNNER_MAX_CONCURRENCY",
                                value=stats.max_concurrency)
        durations = _histogram("host_runner_task_duration_seconds", "From start to end of runs that ended since "
                               "the runner started", ["executor", "status"])
        for (executor, status), snapshot in sorted(stats.durations.items()):
            _add(durations, [executor, status], snapshot)
        yield durations
        checks = CounterMetricFamily("host_runner_lock_checks", "Lock checks of shared-workspace runs that ended "
                                     "since the runner started, by outcome", labels=["outcome"])
        for outcome in ("clean", "violations", "error"):
            checks.add_metric([outcome], stats.lock_checks.get(outcome, 0))
        yield checks
        yield CounterMetricFamily("host_runner_lock_violation_paths", "Paths changed outside their run's lock paths "
                                  "(runs ended since the runner started)", value=stats.lock_checks.get("paths", 0))
        yield from self._resource_metrics(stats.resources)

    @staticmethod
    def _resource_metrics(resources: dict[str, Any]) -> Iterator[Metric]:
        """What the cgroups of ended host tasks counted (README: Resource limits)."""
        memory = _histogram("host_runner_task_memory_peak_bytes", "Peak memory of the cgroups of runs that ended "
                            "since the runner started", ["executor"])
        for executor, snapshot in sorted(resources.get("memory_peak", {}).items()):
            _add(memory, [executor], snapshot)
        yield memory
        pids = _histogram("host_runner_task_pids_peak", "Peak processes of the cgroups of runs that ended since "
                          "the runner started", ["executor"])
        for executor, snapshot in sorted(resources.get("pids_peak", {}).items()):
            _add(pids, [executor], snapshot)
        yield pids
        cpu = CounterMetricFamily("host_runner_task_cpu_seconds", "CPU time of the cgroups of runs that ended "
                                  "since the runner started", labels=["executor"])
        for executor, seconds in sorted(resources.get("cpu_seconds", {}).items()):
            cpu.add_metric([executor], seconds)
        yield cpu
        oom = CounterMetricFamily("host_runner_task_oom_kills", "Runs ended failed by their memory limit (OOM) since "
                                  "the runner started", labels=["executor"])
        for executor, count in sorted(resources.get("oom", {}).items()):
            oom.add_metric([executor], count)
        yield oom

    @staticmethod
    def _callback_metrics(state: dict[str, Any]) -> Iterator[Metric]:
        counters = state["stats"]
        attempts = CounterMetricFamily("host_runner_callback_attempts", "Callback HTTP attempts by result",
                                       labels=["result"])
        attempts.add_metric(["ok"], counters["attempts_ok"])
        attempts.add_metric(["failed"], counters["attempts_failed"])
        yield attempts
        events = CounterMetricFamily("host_runner_callback_events", "Callback events that left their queue: "
                                     "delivered, or given up after the last attempt", labels=["outcome"])
        events.add_metric(["delivered"], counters["delivered"])
        events.add_metric(["given_up"], counters["given_up"])
        yield events
        latency = _histogram("host_runner_callback_delivery_seconds", "From an event being queued to it being "
                             "delivered or given up (retries included)", [])
        _add(latency, [], counters["latency"])
        yield latency
        yield GaugeMetricFamily("host_runner_callback_pending", "Callback events not yet delivered",
                                value=sum(lane["pending"] for lane in state["lanes"]))


def metrics_registry(collector: RunnerCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class MetricsResource:
    """``GET /metrics`` in the Prometheus text exposition format 0.0.4."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.data = generate_latest(self.registry)


__all__ = ["MetricsResource", "RunnerCollector", "metrics_registry"]
