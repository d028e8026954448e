"""Messages between actors and from the API. Plain frozen dataclasses: easy to log, impossible to mutate."""

from __future__ import annotations

from dataclasses import dataclass

from host_runner.claims import Claim
from host_runner.models import TaskRecord, TaskRequest


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
    """ask → the newest :class:`TaskRecord` of the task, with live output tails, or None."""

    task_id: str


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
class TaskEnded:
    """tell, from a TaskActor: its run is terminal and persisted."""

    record: TaskRecord


# --- to a TaskActor ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cancel:
    message: str


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
class CallbackQueued:
    """tell, from whoever wrote a transition with a callback event to the store's outbox: deliver it.

    Only the id travels: the event (and the token) is read from the outbox, which is the truth.
    """

    event_id: str
