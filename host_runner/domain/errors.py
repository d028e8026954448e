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
