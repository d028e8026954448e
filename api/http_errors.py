"""Every error leaves the API as JSON: ``{"error": title, "detail": message, ...}`` and never a traceback.

Domain errors (host_runner.domain.errors) become HTTP answers here and only here (:func:`add_error_handlers`):
resources and the service raise them, whatever route they come from.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from host_runner.domain.errors import (
    Busy, Conflict, InputRefused, NotFound, QueueFull, ShuttingDown, StoreUnavailable, ValidationError,
)

logger = logging.getLogger(__name__)


class ApiError(falcon.HTTPError):
    """An HTTP error with a readable message and optional extra JSON fields (such as ``field``)."""

    def __init__(self, status: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status, title=status.split(" ", 1)[1], description=detail, headers=headers)
        self.extra = extra


def validation_error(field_name: str, message: str) -> ApiError:
    return ApiError(falcon.HTTP_422, f"{field_name}: {message}", field=field_name)


def int_param(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``low..high`` (``default`` when absent); 422 naming it otherwise."""
    try:
        return req.get_param_as_int(name, min_value=low, max_value=high, default=default)
    except falcon.HTTPInvalidParam:
        raise validation_error(name, f"must be an integer between {low} and {high}") from None


def serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    body: dict[str, Any] = {
        "error": exception.title or exception.status,
        "detail": exception.description or exception.title or "error",
    }
    body.update(getattr(exception, "extra", {}))
    resp.media = body
    resp.content_type = falcon.MEDIA_JSON
    resp.append_header("Vary", "Accept")


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exception: Exception, params: dict[str, Any]) -> None:
    """Last line of defence: log the traceback here, answer a plain 500 there."""
    if isinstance(exception, falcon.HTTPError):
        raise exception
    logger.exception("unhandled error in %s %s", req.method, req.path)
    raise ApiError(falcon.HTTP_500, "internal error in the runner; the details are in its log")


def handle_store_unavailable(req: falcon.Request, resp: falcon.Response, exception: Exception,
                             params: dict[str, Any]) -> None:
    """The data disk is full (or failing): nothing was changed; the client may retry once space is back."""
    logger.warning("%s %s refused: %s", req.method, req.path, exception)
    raise ApiError(falcon.HTTP_507, f"{exception}; nothing was changed, try again later")


def handle_validation(req: falcon.Request, resp: falcon.Response, exception: Exception,
                      params: dict[str, Any]) -> None:
    """A field is invalid: 422 naming it in ``field``."""
    assert isinstance(exception, ValidationError)
    raise validation_error(exception.field, exception.message)


def handle_conflict(req: falcon.Request, resp: falcon.Response, exception: Exception, params: dict[str, Any]) -> None:
    """A collision with an active task: 409 naming the holder (null when the world outside is in the way)."""
    assert isinstance(exception, Conflict)
    raise ApiError(falcon.HTTP_409, exception.message, holder_task_id=exception.holder)


def handle_input_refused(req: falcon.Request, resp: falcon.Response, exception: Exception,
                         params: dict[str, Any]) -> None:
    """An agent task that takes no input now: 409, and no holder (nothing is held)."""
    assert isinstance(exception, InputRefused)
    raise ApiError(falcon.HTTP_409, exception.message)


def handle_not_found(req: falcon.Request, resp: falcon.Response, exception: Exception, params: dict[str, Any]) -> None:
    raise ApiError(falcon.HTTP_404, str(exception))


def handle_unavailable(req: falcon.Request, resp: falcon.Response, exception: Exception,
                       params: dict[str, Any]) -> None:
    """Shutting down, or too busy to answer in time: 503, the client may retry (here or after the restart)."""
    raise ApiError(falcon.HTTP_503, str(exception))


def handle_queue_full(req: falcon.Request, resp: falcon.Response, exception: Exception,
                      params: dict[str, Any]) -> None:
    """HOST_RUNNER_MAX_QUEUED tasks wait already: 429, nothing was stored; the client may retry later."""
    assert isinstance(exception, QueueFull)
    seconds = exception.retry_after_seconds
    raise ApiError(falcon.HTTP_429, f"{exception}; nothing was stored, retry in {seconds} s",
                   headers={"Retry-After": str(seconds)})


def add_error_handlers(app: falcon.App) -> None:
    """Every error as JSON: the domain's errors mapped to their status, anything else a logged 500. (Falcon
    picks the handler of the most specific class, so InputRefused wins over Conflict.)"""
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(StoreUnavailable, handle_store_unavailable)
    app.add_error_handler(ValidationError, handle_validation)
    app.add_error_handler(Conflict, handle_conflict)
    app.add_error_handler(InputRefused, handle_input_refused)
    app.add_error_handler(NotFound, handle_not_found)
    app.add_error_handler(QueueFull, handle_queue_full)
    app.add_error_handler((ShuttingDown, Busy), handle_unavailable)


__all__ = ["ApiError", "add_error_handlers", "serialize_error", "validation_error"]
