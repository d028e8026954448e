"""Messages between actors and from the API. Plain frozen dataclasses: easy to log, impossible to mutate."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from host_runner.claims import Claim
from host_runner.models import TaskRecord, TaskRequest
from host_runner.stats import HistogramSnapshot


# --- to the SupervisorActor -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submit:
    """ask → :class:`SubmitResult`; raises :class:`host_runner.errors.Conflict` on a collision."""

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


@dataclass(frozen=True)
class CancelTask:
    """ask → :class:`CancelResult`."""

    task_id: str
    message: str = "canceled by api"


@dataclass(frozen=True)
class CancelResult:
    record: TaskRecord | None
    ended: object | None  # a threading.Event set when the task is terminal, None if it already is


@dataclass(frozen=True)
class PrepareShutdown:
    """ask → list of threading.Event, one per task still ending. Stops admitting and accepting work; with
    ``cancel``, cancels every active task (queued ones end at once)."""

    cancel: bool
    message: str = "canceled: the runner is shutting down"


@dataclass(frozen=True)
class TaskEnded:
    """tell, from a TaskActor: its run is terminal and persisted."""

    record: TaskRecord


@dataclass(frozen=True)
class SendToAgent:
    """ask → :class:`AgentInputResult`: a follow-up message (``text``) or, with ``text`` None, ``_close``.
    Raises :class:`host_runner.errors.Conflict` when the task is not a running agent task."""

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


# --- to any actor (see actors.base.Actor.on_describe) ---------------------------------------------------------
@dataclass(frozen=True)
class Describe:
    """ask → a JSON-able dict of what the actor owns right now (for /debug/actors). Must answer from memory."""


# --- to a TaskActor ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cancel:
    message: str


@dataclass(frozen=True)
class AgentInput:
    """tell, to an agent's TaskActor: write a message (or ``_close`` when ``text`` is None), answer ``reply``."""

    text: str | None
    reply: Future[str]


# --- to the WorktreeRegistryActor -------------------------------------------------------------------------
@dataclass(frozen=True)
class Reserve:
    """ask → None; raises :class:`host_runner.errors.Conflict` naming the holder."""

    owner: tuple[str, str]
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class Release:
    """tell: drop every claim of ``owner``."""

    owner: tuple[str, str]


@dataclass(frozen=True)
class Reservations:
    """ask → list of (owner, claim) pairs."""


# --- to the CallbackActor ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusChanged:
    """tell, from a TaskActor or the supervisor: a persisted transition to report to the task's callback URL."""

    record: TaskRecord
    url: str
    token: str | None


@dataclass(frozen=True)
class OutputProduced:
    """tell, from an agent's TaskActor: a persisted result frame, reported as an ``output`` event in order with
    the run's status events."""

    record: TaskRecord
    output: dict[str, Any]
    index: int  # 1 for the run's first frame
    url: str
    token: str | None
