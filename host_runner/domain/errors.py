"""Domain errors the API turns into HTTP answers."""

from __future__ import annotations


class ValidationError(ValueError):
    """A submission is invalid (HTTP 422); ``field`` names the offending field (dotted for nested ones)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class Conflict(Exception):
    """The submission collides with an active task (HTTP 409); ``holder`` is that task's id."""

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.holder = holder


class ShuttingDown(Exception):
    """The runner is stopping and accepts no new work (HTTP 503)."""


class StoreUnavailable(Exception):
    """The store cannot write (the data disk is full, or an I/O error): HTTP 507. Nothing was changed."""


class NotFound(LookupError):
    """No such task, or no such run of a task (HTTP 404). The message names what was looked for."""


class InputRefused(Conflict):
    """A task cannot take a follow-up message or ``_close`` now: not an agent task, not running, or closing
    (HTTP 409). A subclass of :class:`Conflict` because it is one, but no other task holds anything here, so
    no holder is named (the answer carries no ``holder_task_id``)."""


class Busy(Exception):
    """The runner (or one task) did not answer in time (HTTP 503): nothing is wrong, the client may retry."""


class QueueFull(Exception):
    """As many tasks are queued as the runner keeps (HOST_RUNNER_MAX_QUEUED): HTTP 429, nothing was stored."""

    retry_after_seconds = 10


class DiskLow(StoreUnavailable):
    """Free space on the data directory's filesystem is below HOST_RUNNER_MIN_FREE_BYTES: HTTP 507, before
    anything was written."""
