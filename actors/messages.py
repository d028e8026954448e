"""Messages between actors and from the API. Plain frozen dataclasses: easy to log, impossible to mutate."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from host_runner.domain.claims import Admission, Claim
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.ops.stats import HistogramSnapshot
from host_runner.store.sqlite import OutboxEvent


# --- to the SupervisorActor -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submit:
    """ask → :class:`SubmitResult`; raises :class:`host_runner.domain.errors.Conflict` on a collision.

    ``admission`` comes from :func:`host_runner.workspace.admission.admission_for`, computed by the sender outside any
    actor because it may ask git; without it the supervisor computes the claims itself.
    """

    request: TaskRequest
    admission: Admission | None = None


@dataclass(frozen=True)
class CheckSubmit:
    """ask → the known :class:`TaskRecord` when ``request`` is a retry of a known run, else None; raises
    :class:`host_runner.domain.errors.Conflict` when the task has another active run. What :class:`Submit` checks
    first, asked beforehand so that a retry is answered without checking the world again."""

    request: TaskRequest


@dataclass(frozen=True)
class SubmitResult:
    record: TaskRecord
    created: bool  # False when an identical submission was already known (an idempotent retry)


@dataclass(frozen=True)
class GetTask:
    """ask → the newest :class:`TaskRecord` of the task (or its run ``run_id``), with live output tails, or None."""

    task_id: str
    run_id: str | None = None


@dataclass(frozen=True)
class ListTasks:
    """ask → list of :class:`TaskRecord`, newest first."""

    status: str | None = None
    project_id: str | None = None
    limit: int = 100
    brief: bool = False  # without output tails and agent outputs (see Store.list)


@dataclass(frozen=True)
class CancelTask:
    """ask → :class:`CancelResult`."""

    task_id: str
    message: str = "canceled by api"
    reason: str = "api"  # the record's cancel_reason


@dataclass(frozen=True)
class CancelResult:
    record: TaskRecord | None
    #: The run's final record (as a read of the task shows it) once it is terminal; None if it already is.
    ended: Future[TaskRecord] | None


@dataclass(frozen=True)
class PrepareShutdown:
    """ask → list of futures, one per task still ending (each set to its final record when it has). Stops
    admitting and accepting work; with ``cancel``, cancels every active task (queued ones end at once)."""

    cancel: bool
    message: str = "canceled: the runner is shutting down"


@dataclass(frozen=True)
class ClaimsFreed:
    """tell, from a TaskActor: its workspace is cleaned up, so its claims may go. Sent *before* the terminal
    record is written: whoever saw the record terminal and submits again is queued behind this release."""

    owner: tuple[str, str]


@dataclass(frozen=True)
class TaskEnded:
    """tell, from a TaskActor: its run is terminal and persisted."""

    record: TaskRecord


@dataclass(frozen=True)
class SendToAgent:
    """ask → :class:`AgentInputResult`: a follow-up message (``text``) or, with ``text`` None, ``_close``.
    Raises :class:`host_runner.domain.errors.Conflict` when the task is not a running agent task."""

    task_id: str
    text: str | None


@dataclass(frozen=True)
class AgentInputResult:
    record: TaskRecord | None  # None: no such task
    reply: Future[str] | None  # the TaskActor's answer: the message file's name, or a Conflict


@dataclass(frozen=True)
class GetStats:
    """ask → :class:`Stats` (for /metrics)."""


@dataclass(frozen=True)
class Stats:
    runs: dict[tuple[str, str], int]  # (status, executor) → runs in the store
    running: int
    queued: int
    max_concurrency: int
    durations: dict[tuple[str, str], HistogramSnapshot]  # (executor, status) → runs ended since start
    #: Lock checks of the runs ended since start: clean, violations, error (runs) and paths (outside the locks).
    lock_checks: dict[str, int] = field(default_factory=dict)
    #: What the cgroups of runs ended since start counted (host_runner.ops.stats.EndedRuns.snapshot).
    resources: dict[str, Any] = field(default_factory=dict)


# --- to any actor (see actors.base.Actor.on_describe) ---------------------------------------------------------
@dataclass(frozen=True)
class Describe:
    """ask → a JSON-able dict of what the actor owns right now (for /debug/actors). Must answer from memory."""


# --- to a TaskActor ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cancel:
    message: str
    reason: str = "api"  # the record's cancel_reason (or failure_reason, when the cancel fails the run)


@dataclass(frozen=True)
class AgentInput:
    """tell, to an agent's TaskActor: write a message (or ``_close`` when ``text`` is None), answer ``reply``."""

    text: str | None
    reply: Future[str]


# --- to the WorktreeRegistryActor -------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckClaims:
    """ask → None; raises :class:`host_runner.domain.errors.Conflict` naming the holder when a held claim
    collides. Records nothing (:class:`Reserve` does, and checks again): asked before the world is inspected,
    so that a path filled by an active task's worktree is answered as that task's (409), not as a full path."""

    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class Reserve:
    """ask → None; raises :class:`host_runner.domain.errors.Conflict` naming the holder."""

    owner: tuple[str, str]
    claims: tuple[Claim, ...]
    #: Run once no held claim collides, before the claims are recorded; raises Conflict when the world outside
    #: the runner is in the way (isolated-worktree: a snapshot of `git worktree list`). Must not block.
    verify: Callable[[], None] | None = None


@dataclass(frozen=True)
class Release:
    """tell: drop every claim of ``owner``."""

    owner: tuple[str, str]


@dataclass(frozen=True)
class Reservations:
    """ask → list of (owner, claim) pairs."""


@dataclass(frozen=True)
class PathsHeldAround:
    """ask → :class:`HeldAround`: the path claims of ``owner``, and those other tasks held at any time since
    ``owner`` reserved its own (still held, or released meanwhile): what a lock check must not blame on it."""

    owner: tuple[str, str]


@dataclass(frozen=True)
class HeldAround:
    own: tuple[str, ...]
    others: tuple[str, ...]


# --- to the CallbackActor ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallbackQueued:
    """tell, from whoever wrote a transition with a callback event to the store's outbox: deliver it.

    The event as just committed travels with its id (no read of it back); its body and the token are read from
    the outbox, which is the truth, when it is sent. Without ``event``, it is read from the outbox too.
    """

    event_id: str
    event: OutboxEvent | None = None
