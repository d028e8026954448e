"""Every error leaves the API as JSON: ``{"error": title, "detail": message, ...}`` and never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import falcon

logger = logging.getLogger(__name__)


class ApiError(falcon.HTTPError):
    """An HTTP error with a readable message and optional extra JSON fields (such as ``field``)."""

    def __init__(self, status: str, detail: str, **extra: Any) -> None:
        super().__init__(status, title=status.split(" ", 1)[1], description=detail)
        self.extra = extra


def validation_error(field_name: str, message: str) -> ApiError:
    return ApiError(falcon.HTTP_422, f"{field_name}: {message}", field=field_name)


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
