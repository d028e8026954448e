"""The messages a TaskActor sends itself, from its helper threads and the reactor's timers.

Only :mod:`actors.task` uses them: they live here to keep that module small, and each one is handled by the
TaskActor method marked ``@handles`` with its class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import tell_if_alive
from host_runner.run.launchers import Launched, Launcher
from host_runner.workspace.interface import Workspace

__all__ = [
    "CleanedUp", "Exited", "KillNow", "OutputExceeded", "RetryRecord", "Started", "TimedOut", "tell_output_exceeded",
]


@dataclass(frozen=True)
class Started:
    """The start helper is done: the process runs (not released yet), or ``error`` says why not."""

    workspace: Workspace | None  # set even when starting failed after the workspace was made
    launcher: Launcher | None
    launched: Launched | None
    error: BaseException | None


@dataclass(frozen=True)
class Exited:
    """The reactor saw the process exit."""


@dataclass(frozen=True)
class TimedOut:
    """The timeout timer fired (the deadline may have moved since it was set)."""


@dataclass(frozen=True)
class OutputExceeded:
    """The output watch saw a stream's file over HOST_RUNNER_MAX_OUTPUT_BYTES; ``message`` says which."""

    message: str


def tell_output_exceeded(ref: pykka.ActorRef[Any]) -> Callable[[str], None]:
    """The output watch's callback: it holds the actor's ref only (never the actor, nor its processes)."""
    return lambda message: tell_if_alive(ref, OutputExceeded(message))


@dataclass(frozen=True)
class KillNow:
    """The grace period after TERM is over."""


@dataclass(frozen=True)
class RetryRecord:
    """Time to try writing the terminal record again."""


@dataclass(frozen=True)
class CleanedUp:
    """The cleanup helper is done; ``fields`` go into the record's ``extra``."""

    status: str
    message: str
    exit_code: int | None
    fields: dict[str, Any]
    reason: str | None = None  # failure_reason of a failed run, cancel_reason of a canceled one
