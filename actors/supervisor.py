"""The SupervisorActor: accepts submissions, admits them in FIFO order, and runs one TaskActor per admitted run.

Admission also keeps the agent executor's group queue: at most one agent task of a group runs at a time, the
later ones of a busy group wait in their order, and tasks behind them (of other groups, or not agents) may go
first, so a busy group never holds up the rest of the queue.

It owns the queue and the set of running TaskActors. Reads are answered from the store (plus the live tails
of running tasks' log files), never by waiting on a process. At start it recovers what an earlier runner
process left active: queued runs are queued again in their order, running ones are re-adopted (or finished
from what their wrapper recorded) before any new submission is handled.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pykka

from actors.agent_session import AgentSession, AgentTaskActor
from actors.base import Actor, handles
from actors.messages import (
    AgentInput,
    AgentInputResult,
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
    SendToAgent,
    Stats,
    Submit,
    SubmitResult,
    TaskEnded,
)
from actors.preparing import PREPARING, discard_half_made, never_launched
from actors.worktree_registry import WorktreeRegistryActor
from actors.run_session import RunSession, SessionFactory, TaskServices
from actors.transcript_session import TranscriptSession
from actors.task import TaskActor
from actors.submit_fields import initial_fields
from actors.task_views import group_field, position_of_last, queue_positions, with_live_tails
from host_runner.domain.claims import Admission
from host_runner.domain.errors import Conflict, QueueFull, ShuttingDown
from host_runner.domain.errors import ValidationError
from host_runner.domain.record import TaskRecord, utc_now
from host_runner.domain.request import TaskRequest, agent_group
from host_runner.executors import find_executor, needs_group, speaks_agent_protocol
from host_runner.modes import mode_of
from host_runner.ops.runner_log import task_fields
from host_runner.ops.stats import EndedRuns
from host_runner.run.process_group import RunFiles
from host_runner.workspace.admission import claims_for

logger = logging.getLogger(__name__)

Key = tuple[str, str]
#: How long stopping waits for the TaskActors (in parallel); within ActorSystem.stop's own deadline.
TASK_STOP_SECONDS = 10.0


class SupervisorActor(Actor):
    """Owns admission: at most ``max_concurrency`` TaskActors run; the rest wait in submission order."""

    def __init__(self, services: TaskServices, registry: pykka.ActorRef[WorktreeRegistryActor]) -> None:
        super().__init__()
        self.services = services
        self.config = services.config
        self.store = services.store
        self.registry = registry
        self.queue: deque[Key] = deque()
        # Only the group of each queued task: its request (perhaps a large prompt) is read from the store when
        # the task is admitted, so that a long queue costs little memory.
        self.queued_groups: dict[Key, str | None] = {}
        self.running: dict[Key, pykka.ActorRef[TaskActor]] = {}
        self.running_groups: dict[Key, str] = {}  # the group of each running agent task
        # A cancel's and a shutdown's: set to the run's final record (as a read shows it) when it ends.
        self.end_waiters: dict[Key, list[Future[TaskRecord]]] = {}
        self.reserved: set[Key] = set()  # runs holding claims in the registry (most hold none: no Release to send)
        self.accepting = True
        self.ended = EndedRuns()  # durations and cgroup figures of the runs ended since start

    # --- lifecycle -------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        # TaskActors report back to us; they need our ref, which exists only now.
        self.services = TaskServices(
            config=self.config, store=self.store, reactor=self.services.reactor, supervisor=self.actor_ref,
            journal=self.services.journal, environment=self.services.environment, registry=self.registry,
        )
        self._recover()
        self._admit()

    def on_stop(self) -> None:
        # Stopping TaskActors leaves their processes running: a restarted runner re-adopts them. All at once,
        # with one deadline (each waits for a run being started, see STARTING_STOP_WAIT_SECONDS).
        deadline = time.monotonic() + TASK_STOP_SECONDS
        for key, stopped in [(key, ref.stop(block=False)) for key, ref in self.running.items()]:
            try:
                stopped.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                logger.error("the actor of task %s did not stop within %ss", key[0], TASK_STOP_SECONDS)
        self.running.clear()

    def _recover(self) -> None:
        for record in self.store.active():
            request = self._stored_request(record)
            if request is None:
                continue
            try:
                self.registry.ask(Reserve(record.key, claims_for(request)))
                self.reserved.add(record.key)
            except Conflict as exc:
                logger.warning("recovered task %s collides with another: %s", record.task_id, exc.message,
                               extra=task_fields(record))
            except ValidationError as exc:
                logger.warning("cannot reserve the claims of recovered task %s: %s", record.task_id, exc,
                               extra=task_fields(record))
            if record.status == "running" and never_launched(record):
                logger.info("task %s was being started when the runner stopped; queuing it again", record.task_id,
                            extra=task_fields(record))
                record = replace(record, status="queued", message="queued", pid=None, pid_start_ticks=None,
                                 started_at=None)
                self.store.update(record)
            if record.status == "queued":
                if PREPARING in record.extra:  # stopped while preparing: remove what it half-made
                    record = discard_half_made(record, request)
                    self.store.update(record)
                self.queue.append(record.key)
                self.queued_groups[record.key] = self._group(request)
            else:
                logger.info("re-adopting task %s run %s (pid %s)", record.task_id, record.run_id, record.pid,
                            extra=task_fields(record))
                self._start_actor(record, request, adopt=True)
        if self.queue or self.running:
            logger.info("recovered %d running and %d queued tasks", len(self.running), len(self.queue))

    def _stored_request(self, record: TaskRecord) -> TaskRequest | None:
        request = self.store.get_request(record.task_id, record.run_id)
        if request is not None and request.executor is None:  # stored by a runner that did not pin the executor
            request = replace(request, executor=record.executor)
        return request

    # --- submissions -----------------------------------------------------------------------------------------
    @handles(CheckSubmit, asked=True)
    def on_check_submit(self, message: CheckSubmit) -> TaskRecord | None:
        request = message.request
        if not self.accepting:
            raise ShuttingDown("the runner is shutting down and accepts no new tasks")
        existing, latest = self.store.run_and_latest(request.task_id, request.run_id)
        if existing is not None:
            return self._present(existing)
        if latest is not None and latest.active:
            raise Conflict(
                f"task {request.task_id} already has an active run {latest.run_id}; cancel it or wait for it to end",
                holder=request.task_id,
            )
        return None

    @handles(Submit, asked=True)
    def on_submit(self, message: Submit) -> SubmitResult:
        request = message.request
        existing = self.on_check_submit(CheckSubmit(request))  # again: the world may have moved since
        if existing is not None:
            return SubmitResult(existing, created=False)
        if len(self.queue) >= self.config.max_queued:
            raise QueueFull(f"{len(self.queue)} tasks are queued, the most this runner keeps (HOST_RUNNER_MAX_QUEUED)")
        key = (request.task_id, request.run_id)
        admission = message.admission or Admission(claims_for(request))
        if admission.claims or admission.verify is not None:  # nothing to reserve, nothing to ask (most tasks)
            self.registry.ask(Reserve(key, admission.claims, verify=admission.verify))  # Conflict names the holder
            self.reserved.add(key)
        now = utc_now()
        # Pin the executor, so that the task keeps it across restarts whatever the runner's default becomes.
        # A docker-sandbox runs its sandbox's command: no executor applies (it pins "docker").
        request = replace(request, executor=mode_of(request).pinned_executor(request, self.config.executor))
        extra, timeout = initial_fields(request, self.config, lambda: self.store.get(request.task_id))
        record = TaskRecord(
            task_id=request.task_id, run_id=request.run_id, execution_mode=request.execution_mode,
            executor=request.executor, status="queued", message="queued", created_at=now, updated_at=now,
            timeout_seconds=timeout, workspace=request.workspace,
            log_dir=str(RunFiles.for_run(self.config.runs_dir, request.task_id, request.run_id).directory),
            extra=extra,
        )
        try:
            self.store.insert(record, request)
        except BaseException:
            self._release(key)
            raise
        self.queue.append(key)
        self.queued_groups[key] = self._group(request)
        # The prompt is user data (possibly sensitive): logged only when the operator asked for it.
        shown = f", prompt {request.prompt!r}" if self.config.log_prompts else ""
        logger.info("task %s run %s submitted (%s, executor %s%s)", request.task_id, request.run_id,
                    request.execution_mode, record.executor, shown, extra=task_fields(record))
        self._admit(fresh=(record, request))
        if key in self.queued_groups:  # still queued, so last in the queue (admission keeps the order)
            record = replace(record, extra={**record.extra, **position_of_last(
                len(self.queue), self.queued_groups, self.queued_groups[key])})
        return SubmitResult(record, created=True)

    def _group(self, request: TaskRequest) -> str | None:
        """The group queue a task belongs to: agent tasks only (the other executors have no groups)."""
        return agent_group(request) if needs_group(request.executor) else None

    def _admit(self, fresh: tuple[TaskRecord, TaskRequest] | None = None) -> None:
        """Start queued tasks in submission order while slots are free, skipping those whose group is busy.
        ``fresh``: the run just submitted, as stored: not read back if it starts at once."""
        if not self.accepting:
            return
        busy = set(self.running_groups.values())
        skipped: deque[Key] = deque()
        while self.queue and len(self.running) < self.config.max_concurrency:
            key = self.queue.popleft()
            group = self.queued_groups[key]
            if group is not None and group in busy:
                skipped.append(key)  # waits for its group; the tasks behind it may still go
                continue
            del self.queued_groups[key]
            if fresh is not None and fresh[0].key == key:
                record, request = fresh
            else:
                record = self.store.get(*key)
                request = self._stored_request(record) if record is not None and record.active else None
            if record is None or request is None:
                continue
            self._start_actor(record, request)
            if group is not None:
                busy.add(group)
        skipped.extend(self.queue)
        self.queue = skipped

    def _start_actor(self, record: TaskRecord, request: TaskRequest, *, adopt: bool = False) -> None:
        # Which session a run gets (and the actor's name in /debug/actors) follows its executor.
        actor_class: type[TaskActor] = TaskActor
        session: SessionFactory = RunSession
        if speaks_agent_protocol(record.executor):
            actor_class, session = AgentTaskActor, AgentSession
        elif (executor := find_executor(record.executor)) is not None and executor.event_parser(self.config):
            session = TranscriptSession  # an agent CLI in its machine-readable mode
        self.running[record.key] = actor_class.start(record, request, self.services, adopt=adopt, session=session,
                                                     holds_claims=record.key in self.reserved)
        group = self._group(request)
        if group is not None:
            self.running_groups[record.key] = group

    @handles(ClaimsFreed)
    def on_claims_freed(self, message: ClaimsFreed) -> None:
        self._release(message.owner)

    def _release(self, key: Key) -> None:
        if key in self.reserved:
            self.reserved.discard(key)
            self.registry.tell(Release(key))

    @handles(TaskEnded)
    def on_task_ended(self, message: TaskEnded) -> None:
        key = message.record.key
        self.running_groups.pop(key, None)
        self.ended.observe(message.record)
        self.running.pop(key, None)  # the actor stops by itself after telling us
        self._release(key)
        if waiters := self.end_waiters.pop(key, None):
            shown = self._shown(message.record)  # what a cancel answers: no second round trip to read it
            for waiter in waiters:
                waiter.set_result(shown)
        self._admit()

    @handles(PrepareShutdown, asked=True)
    def on_prepare_shutdown(self, message: PrepareShutdown) -> list[Future[TaskRecord]]:
        """Stop taking work; with ``cancel``, end every active task (the futures are set as they end)."""
        self.accepting = False
        if not message.cancel:
            return []
        for key in list(self.queue):
            self.on_cancel_task(CancelTask(key[0], message.message, "shutdown"))
        return [self._cancel_running(key, ref, message.message, "shutdown") for key, ref in self.running.items()]

    def _cancel_running(self, key: Key, ref: pykka.ActorRef[TaskActor], text: str, reason: str) -> Future[TaskRecord]:
        """Tell a running task to stop; the returned future is set to its final record when it has ended."""
        ref.tell(Cancel(text, reason))
        ended: Future[TaskRecord] = Future()
        self.end_waiters.setdefault(key, []).append(ended)
        return ended

    # --- cancel ----------------------------------------------------------------------------------------------
    @handles(CancelTask, asked=True)
    def on_cancel_task(self, message: CancelTask) -> CancelResult:
        record = self.store.get(message.task_id)
        if record is None or not record.active:
            return CancelResult(self._shown(record) if record is not None else None, None)
        key = record.key
        if key in self.queued_groups:  # never started: end it here
            request = self.store.get_request(*key)
            now = utc_now()
            record = record.evolve(status="canceled", message=message.message, finished_at=now,
                                   extra={**record.extra, "cancel_reason": message.reason})
            # Persisted first: if the store cannot be written (StoreUnavailable), the task stays queued.
            self.services.journal.commit(record, request.status_callback_url if request is not None else None)
            del self.queued_groups[key]
            self.queue.remove(key)
            self._release(key)
            return CancelResult(self._shown(record), None)
        ref = self.running.get(key)
        if ref is None:  # persisted as active but owned by nobody: cannot happen after recovery
            logger.error("task %s is %s but has no actor", record.task_id, record.status, extra=task_fields(record))
            return CancelResult(record, None)
        return CancelResult(record, self._cancel_running(key, ref, message.message, message.reason))

    # --- agent input -----------------------------------------------------------------------------------------
    @handles(SendToAgent, asked=True)
    def on_send_to_agent(self, message: SendToAgent) -> AgentInputResult:
        """Hand a follow-up message (or ``_close``) to the task's actor; it answers the returned future."""
        record = self.store.get(message.task_id)
        if record is None:
            return AgentInputResult(None, None)
        if not speaks_agent_protocol(record.executor):
            raise Conflict(f"task {record.task_id} runs the {record.executor} executor, which takes no messages")
        ref = self.running.get(record.key)
        if record.status != "running" or ref is None:
            raise Conflict(f"task {record.task_id} is {record.status}, not running")
        reply: Future[str] = Future()
        ref.tell(AgentInput(message.text, reply))
        return AgentInputResult(record, reply)

    # --- reads -----------------------------------------------------------------------------------------------
    @handles(GetTask, asked=True)
    def on_get_task(self, message: GetTask) -> TaskRecord | None:
        record = self.store.get(message.task_id, message.run_id)
        return self._shown(record) if record is not None else None

    @handles(ListTasks, asked=True)
    def on_list_tasks(self, message: ListTasks) -> list[TaskRecord]:
        records = self.store.list(status=message.status, project_id=message.project_id, limit=message.limit,
                                  brief=message.brief)
        positions = self._queue_positions() if any(record.status == "queued" for record in records) else {}
        return [self._present(record, positions, tails=not message.brief) for record in records]

    def _present(self, record: TaskRecord, positions: dict[Key, dict[str, int]] | None = None, *,
                 tails: bool = True) -> TaskRecord:
        """A record as reads show it: live output tails while running (unless ``tails`` is False), the queue
        position while queued."""
        if record.status == "queued":
            if record.key not in self.queued_groups:  # started (or ended) since it was read: no position
                return record
            if positions is None:
                positions = self._queue_positions()
            position = positions.get(record.key)
            return replace(record, extra={**record.extra, **position}) if position else record
        return with_live_tails(record, self.config.runs_dir) if tails else record

    def _queue_positions(self) -> dict[Key, dict[str, int]]:
        return queue_positions(self.queue, self.queued_groups)

    def _shown(self, record: TaskRecord) -> TaskRecord:
        """A record as one task's read shows it: live tails or queue position, and the delivery state of the
        run's callback events (never their URL or token)."""
        callbacks = tuple(self.store.callbacks_for(record.task_id, record.run_id))
        return replace(self._present(record), callbacks=callbacks)

    # --- introspection ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "accepting": self.accepting,
            "max_concurrency": self.config.max_concurrency,
            "running": len(self.running),
            "queued": len(self.queue),
            "running_tasks": [{"task_id": key[0], "run_id": key[1], "actor_urn": ref.actor_urn,
                               **group_field(self.running_groups.get(key))}
                              for key, ref in self.running.items()],
            "queue": [{"task_id": key[0], "run_id": key[1], **group_field(self.queued_groups[key])}
                      for key in self.queue],
        }

    @handles(GetStats, asked=True)
    def on_get_stats(self, message: GetStats) -> Stats:
        return Stats(
            runs=self.store.count_by_status(), running=len(self.running), queued=len(self.queue),
            max_concurrency=self.config.max_concurrency,
            durations={labels: histogram.snapshot() for labels, histogram in self.ended.durations.items()},
            resources=self.ended.snapshot(), lock_checks=self.ended.lock_checks.snapshot(),
        )
