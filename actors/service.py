"""The actor system's public face: :class:`RunnerService`, what the HTTP API (or any other front) calls.

Callers get domain values and domain errors, never a pykka ref, a message class or a timeout: the service
owns the submit protocol (the retry check, the admission computed outside any actor, the Submit), every ask
and its deadline, and turns actor-level outcomes (no record, an ask that timed out, a stopped actor, an agent
refusing input) into :mod:`host_runner.domain.errors`. Its methods run in the caller's thread (a request
thread), so they may wait (on git, on a task ending) without blocking any actor's inbox.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from actors.introspection import ActorReport, describe_actors
from actors.messages import (
    AgentInputResult,
    CancelResult,
    CancelTask,
    CheckClaims,
    CheckSubmit,
    Describe,
    GetStats,
    GetTask,
    ListTasks,
    SendToAgent,
    Stats,
    Submit,
    SubmitResult,
)
from host_runner.domain.errors import Busy, Conflict, InputRefused, NotFound, ShuttingDown
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.domain.submission import parse_task_request
from host_runner.modes import mode_of
from host_runner.ops.config import Config
from host_runner.ops.disk import require_free_disk
from host_runner.run.process_group import RunFiles
from host_runner.store.event_log import EventLog
from host_runner.workspace.admission import admission_for, claims_for

if TYPE_CHECKING:
    from actors.callback_sender import CallbackActor
    from actors.retention import RetentionActor
    from actors.worktree_registry import WorktreeRegistryActor
    from actors.supervisor import SupervisorActor

ASK_TIMEOUT_SECONDS = 30.0
STATUS_ASK_TIMEOUT_SECONDS = 5.0  # a log follower's "is the run over?": short, it asks again soon anyway

@dataclass(frozen=True)
class AgentMessageSent:
    """A follow-up message the task's actor wrote for its agent: the run it went to and the message file's name."""

    record: TaskRecord
    message_id: str


@dataclass(frozen=True)
class RunOutput:
    """One run's stdout or stderr: the file its processes write (read it directly, no actor is involved) and
    whether the run is over (asked of the supervisor on each call: a follower polls it)."""

    record: TaskRecord
    path: Path
    is_over: Callable[[], bool]

    def size(self) -> int:
        """The file's size now (0 before the run wrote anything)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


@dataclass(frozen=True)
class ActorsReport:
    """Every live actor's answer to Describe (for /debug/actors), with the three long-lived ones picked out
    (None when that actor did not answer in time)."""

    reports: list[ActorReport]
    supervisor: dict[str, Any] | None
    registry: dict[str, Any] | None
    callbacks: dict[str, Any] | None


@dataclass(frozen=True)
class RunnerStats:
    """What a /metrics scrape shows: the supervisor's :class:`Stats` and the callback sender's state (None when
    the actor did not answer in time; ``has_callbacks`` says whether there is a callback sender to ask), and
    the live actors per class."""

    tasks: Stats | None
    callbacks: dict[str, Any] | None
    has_callbacks: bool
    actors: dict[str, int]
    #: The RetentionActor's counts (pruned runs and callback events), None when it did not answer.
    retention: dict[str, Any] | None = None


class RunnerService:
    """Submits, reads, cancels and talks to tasks through the supervisor; describes the actors.

    Every method may raise :class:`Busy` (an actor did not answer within the ask timeout) or
    :class:`ShuttingDown` (the actors are stopping); the others are named per method.
    """

    def __init__(self, supervisor: pykka.ActorRef[SupervisorActor], config: Config, *,
                 registry: pykka.ActorRef[WorktreeRegistryActor] | None = None,
                 callbacks: pykka.ActorRef[CallbackActor] | None = None,
                 retention: pykka.ActorRef[RetentionActor] | None = None,
                 events: EventLog | None = None,
                 ask_timeout: float = ASK_TIMEOUT_SECONDS) -> None:
        self.supervisor = supervisor
        self.config = config
        self.registry = registry
        self.callbacks = callbacks
        self.retention = retention
        self.event_log = events
        self.ask_timeout = ask_timeout

    # --- asking ------------------------------------------------------------------------------------------------
    def _ask(self, message: Any, actor: pykka.ActorRef[Any] | None = None) -> Any:
        """Ask the supervisor (or ``actor``): 'no answer in time' becomes :class:`Busy` rather than a hung caller."""
        try:
            return (actor or self.supervisor).ask(message, timeout=self.ask_timeout)
        except pykka.Timeout:
            raise Busy("the runner is too busy to answer; try again") from None
        except pykka.ActorDeadError:
            raise ShuttingDown("the runner is shutting down") from None

    # --- submit ------------------------------------------------------------------------------------------------
    def submit(self, body: object) -> SubmitResult:
        """Validate a submission (a decoded JSON body) and queue it; an identical earlier submission (a retry)
        gets its record back with ``created`` False. Raises ValidationError, Conflict, StoreUnavailable (DiskLow),
        QueueFull."""
        request = parse_task_request(body, self.config.submit_rules)
        require_free_disk(self.config)  # DiskLow (507) before anything is written
        existing = self._known_retry(request)
        if existing is not None:
            return SubmitResult(existing, created=False)
        self._refuse_held_claims(request)
        admission = admission_for(request)  # may ask git: here in the caller's thread, not in an actor
        result: SubmitResult = self._ask(Submit(request, admission))
        return result

    def _known_retry(self, request: TaskRequest) -> TaskRecord | None:
        """A retry of a mode whose admission inspects the world (an isolated worktree) gets its run back before
        the world is checked: its own worktree may fill the path now, which admission would refuse. (Submit
        checks for a retry too, so the other modes save this round trip.)"""
        if not mode_of(request).checks_retry_before_admission:
            return None
        existing: TaskRecord | None = self._ask(CheckSubmit(request))
        return existing

    def _refuse_held_claims(self, request: TaskRequest) -> None:
        """Before the world is inspected: a path or branch an active task holds is a Conflict naming it (409,
        which clients retry), even when that task's worktree now fills the path (which admission refuses, 422)."""
        if self.registry is None or not mode_of(request).checks_retry_before_admission:
            return
        claims = claims_for(request)  # may ask git: here in the caller's thread
        self._ask(CheckClaims(claims), self.registry)

    # --- reads -------------------------------------------------------------------------------------------------
    def get(self, task_id: str, run_id: str | None = None) -> TaskRecord:
        """The task's newest run (or its run ``run_id``), with live output tails. Raises NotFound."""
        record: TaskRecord | None = self._ask(GetTask(task_id, run_id))
        if record is None:
            raise NotFound(f"no run {run_id} of task {task_id}" if run_id else f"no task {task_id}")
        return record

    def list(self, status: str | None = None, project_id: str | None = None, limit: int = 100,
             brief: bool = False) -> list[TaskRecord]:
        """The newest run of each task, newest first; ``brief`` leaves the output tails and agent outputs empty."""
        records: list[TaskRecord] = self._ask(ListTasks(status, project_id, limit, brief))
        return records

    def logs(self, task_id: str, stream: str, run_id: str | None = None) -> RunOutput:
        """The file of a run's ``stream`` ("stdout" or "stderr"). Raises NotFound."""
        record = self.get(task_id, run_id)
        # From the configured data directory (as the supervisor's live tails are), not the stored absolute
        # log_dir: a data directory moved between runs must keep working.
        files = RunFiles.for_run(self.config.runs_dir, record.task_id, record.run_id)
        path = files.stdout if stream == "stdout" else files.stderr
        key = (record.task_id, record.run_id)
        return RunOutput(record, path, is_over=lambda: self._run_is_over(*key))

    def events(self) -> EventLog:
        """The event log, read by the event stream in its request threads: committed state only, written by the
        actors' transitions (no actor is asked: a stream's reads never wait on one). Raises ShuttingDown."""
        if self.event_log is None:
            raise ShuttingDown("the runner is shutting down")
        return self.event_log

    def _run_is_over(self, task_id: str, run_id: str) -> bool:
        """Whether a run is terminal (or gone); a busy supervisor means "not yet, look again later"."""
        try:
            record = self.supervisor.ask(GetTask(task_id, run_id), timeout=STATUS_ASK_TIMEOUT_SECONDS)
        except pykka.Timeout:
            return False
        except pykka.ActorDeadError:
            return True  # the runner is stopping
        return record is None or not record.active

    # --- changes -----------------------------------------------------------------------------------------------
    def cancel(self, task_id: str) -> TaskRecord:
        """Stop an active task and return its final record (a finished task's record unchanged). Waits here for
        the task's processes to be gone. Raises NotFound, StoreUnavailable."""
        result: CancelResult = self._ask(CancelTask(task_id))
        if result.record is None:
            raise NotFound(f"no task {task_id}")
        record = result.record
        if result.ended is not None:
            try:
                return result.ended.result(timeout=self.config.kill_grace_seconds + 10)
            except FutureTimeout:  # still ending (a slow cleanup): its record as it is now
                record = self._ask(GetTask(task_id)) or record
        return record

    def message(self, task_id: str, text: str) -> AgentMessageSent:
        """Hand a follow-up message to a running agent task. Raises NotFound, InputRefused."""
        record, name = self._send(task_id, text)
        return AgentMessageSent(record, name)

    def close(self, task_id: str) -> TaskRecord:
        """Ask a running agent task to finish its current query and exit. Raises NotFound, InputRefused."""
        record, _ = self._send(task_id, None)
        return record

    def _send(self, task_id: str, text: str | None) -> tuple[TaskRecord, str]:
        """Have the task's actor write the message (or ``_close``); wait for its answer here, not in an actor."""
        try:
            result: AgentInputResult = self._ask(SendToAgent(task_id, text))
            if result.record is None or result.reply is None:
                raise NotFound(f"no task {task_id}")
            name = result.reply.result(timeout=self.ask_timeout)
        except InputRefused:
            raise
        except Conflict as exc:
            raise InputRefused(exc.message) from None
        except FutureTimeout:
            raise Busy("the task did not answer in time; try again") from None
        return result.record, name

    # --- introspection -----------------------------------------------------------------------------------------
    def describe(self, timeout: float) -> ActorsReport:
        """Every live actor asked for Describe at once; waits at most ``timeout`` seconds in total."""
        reports = sorted(describe_actors(timeout), key=lambda report: (report.actor_class, report.urn))
        return ActorsReport(
            reports=reports,
            supervisor=_state_of(reports, self.supervisor, "SupervisorActor"),
            registry=_state_of(reports, self.registry, "WorktreeRegistryActor"),
            callbacks=_state_of(reports, self.callbacks, "CallbackActor"),
        )

    def stats(self, timeout: float) -> RunnerStats:
        """The supervisor's stats, the callback sender's and the retention actor's state, asked at once with one
        deadline."""
        futures: dict[str, pykka.Future[Any] | None] = {}
        for name, ref, message in (("supervisor", self.supervisor, GetStats()), ("callbacks", self.callbacks,
                                   Describe()), ("retention", self.retention, Describe())):
            try:
                futures[name] = ref.ask(message, block=False) if ref is not None else None
            except pykka.ActorDeadError:
                futures[name] = None
        deadline = time.monotonic() + timeout
        answers: dict[str, Any] = {}
        for name, future in futures.items():
            if future is None:
                continue
            try:
                answers[name] = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except (pykka.Timeout, pykka.ActorDeadError):
                pass
        actors = Counter(ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all())
        return RunnerStats(answers.get("supervisor"), answers.get("callbacks"), self.callbacks is not None,
                           dict(sorted(actors.items())), answers.get("retention"))


def _state_of(reports: list[ActorReport], ref: pykka.ActorRef[Any] | None, class_name: str) -> dict[str, Any] | None:
    """The answer of ``ref`` (or, without a ref, of the only actor of that class); None if it did not answer."""
    if ref is not None:
        matches = [report for report in reports if report.urn == ref.actor_urn]
    else:
        matches = [report for report in reports if report.actor_class == class_name]
        if len(matches) != 1:
            return None
    if not matches or not matches[0].answered:
        return None
    return matches[0].state


# Stats and SubmitResult are the supervisor's answers, passed on as they are: part of this face too.
__all__ = [
    "ASK_TIMEOUT_SECONDS", "ActorsReport", "AgentMessageSent", "RunOutput", "RunnerService", "RunnerStats", "Stats",
    "SubmitResult",
]
