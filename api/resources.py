"""REST resources. Each one parses the request, calls one method of the :class:`RunnerService` and renders the
answer; the domain errors the service raises become HTTP answers in api.http_errors."""

from __future__ import annotations

import json
from typing import Any

import falcon

from actors.service import RunnerService
from api.http_errors import ApiError, validation_error
from host_runner.domain.record import STATUSES
from host_runner.ops.config import Config
from host_runner.ops.disk import disk_is_low

MAX_BODY_BYTES = 1024 * 1024


def read_json(req: falcon.Request) -> Any:
    """The request body as JSON: 413 over 1 MiB, 400 if malformed (a body that is not declared JSON never gets
    here: the request guard answers 415)."""
    if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
        raise ApiError(falcon.HTTP_413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = req.bounded_stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(falcon.HTTP_413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if req.content_length is not None and len(raw) < req.content_length:
        # The client promised more than it sent and went away: what arrived may parse (a complete-looking JSON
        # object cut before its trailing bytes), but it is not what was meant. Act on nothing.
        raise ApiError(falcon.HTTP_400, f"the body ended after {len(raw)} of its {req.content_length} bytes")
    if not raw.strip():
        raise ApiError(falcon.HTTP_400, "the body is empty; a JSON object is expected")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ApiError(falcon.HTTP_400, f"the body is not valid JSON: {reason}") from None


def render(resp: falcon.Response, status: str, body: Any) -> None:
    resp.status = status
    resp.media = body


class TasksResource:
    """``POST /tasks`` and ``/tasks/submit`` (submit), ``GET /tasks`` (list)."""

    def __init__(self, service: RunnerService) -> None:
        self.service = service

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        result = self.service.submit(read_json(req))
        resp.location = f"/tasks/{result.record.task_id}"
        render(resp, falcon.HTTP_202 if result.created else falcon.HTTP_200, result.record.to_public())

    on_post_submit = on_post

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status = req.get_param("status")
        if status is not None and status not in STATUSES:
            raise validation_error("status", f"must be one of {', '.join(STATUSES)}")
        try:
            limit = req.get_param_as_int("limit", min_value=1, max_value=1000, default=100)
        except falcon.HTTPInvalidParam:
            raise validation_error("limit", "must be an integer between 1 and 1000") from None
        try:
            brief = req.get_param_as_bool("brief", default=False)
        except falcon.HTTPInvalidParam:
            raise validation_error("brief", "must be true or false") from None
        records = self.service.list(status, req.get_param("project_id"), limit, brief)
        shown = [record.to_public() for record in records]
        if brief:
            for data in shown:  # the store left them empty; absent says "not in this view", not "no output"
                for key in BRIEF_OMITS:
                    data.pop(key, None)
        render(resp, falcon.HTTP_200, {"tasks": shown, "count": len(shown)})


# What ``GET /tasks?brief=true`` leaves out of each record (the dashboard reads them from one task's record).
BRIEF_OMITS = ("stdout", "stderr", "outputs")


class TaskResource:
    """``GET /tasks/{task_id}``, ``POST /tasks/{task_id}/cancel``, and for agent tasks
    ``POST /tasks/{task_id}/messages`` and ``POST /tasks/{task_id}/close``."""

    def __init__(self, service: RunnerService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        render(resp, falcon.HTTP_200, self.service.get(task_id).to_public())

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        render(resp, falcon.HTTP_200, self.service.cancel(task_id).to_public())

    def on_post_messages(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        body = read_json(req)
        if not isinstance(body, dict):
            raise validation_error("body", "must be a JSON object")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise validation_error("text", "is required: a non-empty string")
        if "\x00" in text:
            raise validation_error("text", "must not contain NUL bytes")
        sent = self.service.message(task_id, text)
        render(resp, falcon.HTTP_202, {"task_id": sent.record.task_id, "run_id": sent.record.run_id,
                                       "message_id": sent.message_id})

    def on_post_close(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        record = self.service.close(task_id)
        render(resp, falcon.HTTP_202, {"task_id": record.task_id, "run_id": record.run_id, "closing": True})


class HealthResource:
    """``GET /health``: liveness, and whether the data disk has room for new tasks; asks no actor (and needs no
    token)."""

    def __init__(self, config: Config, cgroups: str | None = None) -> None:
        self.config = config
        #: Said only when task cgroups are not in use ("unavailable (reason)", "off"), like a low disk: what an
        #: operator must know (no limits, a cancel reaches only what the wrapper sees). See host_runner.limits.
        self.cgroups = cgroups

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = {"status": "ok", "disk": "low" if disk_is_low(self.config) else "ok"}
        if self.cgroups is not None:
            body["cgroups"] = self.cgroups
        render(resp, falcon.HTTP_200, body)


__all__ = ["BRIEF_OMITS", "HealthResource", "TaskResource", "TasksResource", "read_json", "render"]
