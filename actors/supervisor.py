"""The SupervisorActor: accepts submissions, admits them in FIFO order, and runs one TaskActor per admitted run.

It owns the queue and the set of running TaskActors. Reads are answered from the store (plus the live tails
of running tasks' log files), never by waiting on a process. At start it recovers what an earlier runner
process left active: queued runs are queued again in their order, running ones are re-adopted (or finished
from what their wrapper recorded) before any new submission is handled.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import pykka

from actors.base import Actor, tell_if_alive
from actors.messages import (
    CallbackQueued,
    Cancel,
    CancelResult,
    CancelTask,
    CheckSubmit,
    ClaimsFreed,
    GetStats,
    GetTask,
    ListTasks,
    PrepareShutdown,
    Release,
    Reserve,
    Stats,
    Submit,
    SubmitResult,
    TaskEnded,
)
from actors.task import TaskActor, TaskServices
from host_runner.claims import Admission, claims_for
from host_runner.errors import Conflict, ShuttingDown
from host_runner.logs import task_fields
from host_runner.models import TaskRecord, TaskRequest, ValidationError, utc_now
from host_runner.process import RunFiles, read_tail, signal_group, start_ticks
from host_runner.stats import DURATION_BUCKETS, Histogram, seconds_between

logger = logging.getLogger(__name__)

Key = tuple[str, str]


class SupervisorActor(Actor):
    """Owns admission: at most ``max_concurrency`` TaskActors run; the rest wait in submission order."""

    asked = frozenset({Submit, CheckSubmit, GetTask, ListTasks, CancelTask, PrepareShutdown, GetStats})

    def __init__(self, services: TaskServices, registry: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.services = services
        self.config = services.config
        self.store = services.store
        self.registry = registry
        self.queue: deque[Key] = deque()
        self.queued_requests: dict[Key, TaskRequest] = {}
        self.running: dict[Key, pykka.ActorRef[Any]] = {}
        self.end_waiters: dict[Key, list[threading.Event]] = {}
        self.accepting = True
        self.durations: dict[tuple[str, str], Histogram] = {}  # (executor, status) of runs ended since start

    # --- lifecycle -------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        # TaskActors report back to us; they need our ref, which exists only now.
        self.services = TaskServices(
            config=self.config, store=self.store, reactor=self.services.reactor, supervisor=self.actor_ref,
            callbacks=self.services.callbacks, environment=self.services.environment,
        )
        self._recover()
        self._admit()

    def on_stop(self) -> None:
        # Stopping TaskActors leaves their processes running: a restarted runner re-adopts them.
        for ref in list(self.running.values()):
            ref.stop(block=True, timeout=10)
        self.running.clear()

    def _recover(self) -> None:
        for record in self.store.active():
            request = self.store.get_request(record.task_id, record.run_id)
            if request is None:
                continue
            try:
                self.registry.ask(Reserve(record.key, claims_for(request)))
            except Conflict as exc:
                logger.warning("recovered task %s collides with another: %s", record.task_id, exc.message,
                               extra=task_fields(record))
            except ValidationError as exc:
                logger.warning("cannot reserve the claims of recovered task %s: %s", record.task_id, exc,
                               extra=task_fields(record))
            if record.status == "running" and self._never_launched(record):
                logger.info("task %s was being started when the runner stopped; queuing it again", record.task_id,
                            extra=task_fields(record))
                record = replace(record, status="queued", message="queued", pid=None, pid_start_ticks=None,
                                 started_at=None)
                self.store.update(record)
            if record.status == "queued":
                self.queue.append(record.key)
                self.queued_requests[record.key] = request
            else:
                logger.info("re-adopting task %s run %s (pid %s)", record.task_id, record.run_id, record.pid,
                            extra=task_fields(record))
                self.running[record.key] = TaskActor.start(record, request, self.services, adopt=True)
        if self.queue or self.running:
            logger.info("recovered %d running and %d queued tasks", len(self.running), len(self.queue))

    def _never_launched(self, record: TaskRecord) -> bool:
        """A process run whose wrapper was never released (see host_runner.wrapper): stop it if still there."""
        if record.pid is None or not record.log_dir:
            return False
        if RunFiles(Path(record.log_dir)).launched.exists():
            return False
        if record.pid_start_ticks is not None and start_ticks(record.pid) == record.pid_start_ticks:
            signal_group(record.pid, signal.SIGKILL)  # it is waiting for a go that will never come
        return True

    # --- submissions -----------------------------------------------------------------------------------------
    def on_check_submit(self, message: CheckSubmit) -> TaskRecord | None:
        request = message.request
        if not self.accepting:
            raise ShuttingDown("the runner is shutting down and accepts no new tasks")
        existing = self.store.get(request.task_id, request.run_id)
        if existing is not None:
            return self._with_live_tails(existing)
        latest = self.store.get(request.task_id)
        if latest is not None and latest.active:
            raise Conflict(
                f"task {request.task_id} already has an active run {latest.run_id}; cancel it or wait for it to end",
                holder=request.task_id,
            )
        return None

    def on_submit(self, message: Submit) -> SubmitResult:
        request = message.request
        existing = self.on_check_submit(CheckSubmit(request))  # again: the world may have moved since
        if existing is not None:
            return SubmitResult(existing, created=False)
        key = (request.task_id, request.run_id)
        admission = message.admission or Admission(claims_for(request))
        self.registry.ask(Reserve(key, admission.claims, verify=admission.verify))  # raises Conflict naming the holder
        now = utc_now()
        record = TaskRecord(
            task_id=request.task_id, run_id=request.run_id, execution_mode=request.execution_mode,
            executor="docker" if request.execution_mode == "docker-sandbox" else self.config.executor,
            status="queued", message="queued", created_at=now, updated_at=now,
            timeout_seconds=request.timeout_seconds, workspace=request.workspace,
            log_dir=str(RunFiles.for_run(self.config.runs_dir, request.task_id, request.run_id).directory),
        )
        try:
            self.store.insert(record, request)
        except BaseException:
            self.registry.tell(Release(key))
            raise
        self.queue.append(key)
        self.queued_requests[key] = request
        # The prompt is user data (possibly sensitive): logged only when the operator asked for it.
        shown = f", prompt {request.prompt!r}" if self.config.log_prompts else ""
        logger.info("task %s run %s submitted (%s, executor %s%s)", request.task_id, request.run_id,
                    request.execution_mode, record.executor, shown, extra=task_fields(record))
        self._admit()
        return SubmitResult(record, created=True)

    def _admit(self) -> None:
        while self.accepting and self.queue and len(self.running) < self.config.max_concurrency:
            key = self.queue.popleft()
            request = self.queued_requests.pop(key)
            record = self.store.get(*key)
            if record is None or not record.active:
                continue
            self.running[key] = TaskActor.start(record, request, self.services)

    def on_claims_freed(self, message: ClaimsFreed) -> None:
        self.registry.tell(Release(message.owner))

    def on_task_ended(self, message: TaskEnded) -> None:
        key = message.record.key
        duration = seconds_between(message.record.started_at, message.record.finished_at)
        if duration is not None:
            labels = (message.record.executor, message.record.status)
            self.durations.setdefault(labels, Histogram(DURATION_BUCKETS)).observe(duration)
        ref = self.running.pop(key, None)
        if ref is not None:
            ref.stop(block=False)
        self.registry.tell(Release(key))
        for event in self.end_waiters.pop(key, []):
            event.set()
        self._admit()

    def on_prepare_shutdown(self, message: PrepareShutdown) -> list[threading.Event]:
        """Stop taking work; with ``cancel``, end every active task (the events are set as they end)."""
        self.accepting = False
        if not message.cancel:
            return []
        for key in list(self.queue):
            self.on_cancel_task(CancelTask(key[0], message.message))
        events = []
        for key, ref in self.running.items():
            ref.tell(Cancel(message.message))
            event = threading.Event()
            self.end_waiters.setdefault(key, []).append(event)
            events.append(event)
        return events

    # --- cancel ----------------------------------------------------------------------------------------------
    def on_cancel_task(self, message: CancelTask) -> CancelResult:
        record = self.store.get(message.task_id)
        if record is None or not record.active:
            return CancelResult(self._shown(record) if record is not None else None, None)
        key = record.key
        if key in self.queued_requests:  # never started: end it here
            request = self.queued_requests.pop(key)
            self.queue.remove(key)
            now = utc_now()
            record = record.evolve(status="canceled", message=message.message, finished_at=now)
            event = self.store.update(record, callback_url=request.status_callback_url)
            if event is not None:
                tell_if_alive(self.services.callbacks, CallbackQueued(event.event_id))
            self.registry.tell(Release(key))
            return CancelResult(self._shown(record), None)
        ref = self.running.get(key)
        if ref is None:  # persisted as active but owned by nobody: cannot happen after recovery
            logger.error("task %s is %s but has no actor", record.task_id, record.status, extra=task_fields(record))
            return CancelResult(record, None)
        ref.tell(Cancel(message.message))
        event = threading.Event()
        self.end_waiters.setdefault(key, []).append(event)
        return CancelResult(record, event)

    # --- reads -----------------------------------------------------------------------------------------------
    def on_get_task(self, message: GetTask) -> TaskRecord | None:
        record = self.store.get(message.task_id, message.run_id)
        return self._shown(record) if record is not None else None

    def on_list_tasks(self, message: ListTasks) -> list[TaskRecord]:
        records = self.store.list(status=message.status, project_id=message.project_id, limit=message.limit)
        return [self._with_live_tails(record) for record in records]

    def _shown(self, record: TaskRecord) -> TaskRecord:
        """A record as one task's read shows it: live tails, and the delivery state of the run's callback
        events (never their URL or token)."""
        callbacks = tuple(self.store.callbacks_for(record.task_id, record.run_id))
        return replace(self._with_live_tails(record), callbacks=callbacks)

    def _with_live_tails(self, record: TaskRecord) -> TaskRecord:
        """While a task runs its output is only on disk: show the current tails."""
        if record.status != "running" or not record.log_dir:
            return record
        files = RunFiles.for_run(self.config.runs_dir, record.task_id, record.run_id)
        return replace(record, stdout=read_tail(files.stdout), stderr=read_tail(files.stderr))

    # --- introspection ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "accepting": self.accepting,
            "max_concurrency": self.config.max_concurrency,
            "running": len(self.running),
            "queued": len(self.queue),
            "running_tasks": [{"task_id": key[0], "run_id": key[1], "actor_urn": ref.actor_urn}
                              for key, ref in self.running.items()],
            "queue": [{"task_id": key[0], "run_id": key[1]} for key in self.queue],
        }

    def on_get_stats(self, message: GetStats) -> Stats:
        return Stats(
            runs=self.store.count_by_status(), running=len(self.running), queued=len(self.queue),
            max_concurrency=self.config.max_concurrency,
            durations={labels: histogram.snapshot() for labels, histogram in self.durations.items()},
        )
