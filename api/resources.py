"""REST resources. Each one parses the request, sends one message to the supervisor and renders the answer."""

from __future__ import annotations

import json
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import falcon
import pykka

from actors.messages import (
    AgentInputResult,
    CancelTask,
    CheckSubmit,
    GetTask,
    ListTasks,
    SendToAgent,
    Submit,
    SubmitResult,
)
from api.http_errors import ApiError, validation_error
from host_runner.domain.errors import Conflict, ShuttingDown
from host_runner.domain.errors import ValidationError
from host_runner.domain.record import STATUSES
from host_runner.domain.submission import parse_task_request
from host_runner.modes import mode_of
from host_runner.ops.config import Config
from host_runner.workspace.admission import admission_for

MAX_BODY_BYTES = 1024 * 1024
ASK_TIMEOUT_SECONDS = 30.0


def ask(actor: pykka.ActorRef[Any], message: Any) -> Any:
    """Ask an actor, turning 'it did not answer in time' into a 503 rather than a hung request."""
    try:
        return actor.ask(message, timeout=ASK_TIMEOUT_SECONDS)
    except pykka.Timeout:
        raise ApiError(falcon.HTTP_503, "the runner is too busy to answer; try again") from None
    except pykka.ActorDeadError:
        raise ApiError(falcon.HTTP_503, "the runner is shutting down") from None


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

    def __init__(self, supervisor: pykka.ActorRef[Any], config: Config) -> None:
        self.supervisor = supervisor
        self.config = config

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req)
        try:
            request = parse_task_request(body, self.config.submit_rules)
        except ValidationError as exc:
            raise validation_error(exc.field, exc.message) from None
        try:
            if mode_of(request).checks_retry_before_admission:
                # A retry gets its run back before the world is checked: its own worktree may fill the path now.
                # (Submit checks for a retry too, so the other modes save this round trip.)
                existing = ask(self.supervisor, CheckSubmit(request))
                if existing is not None:
                    resp.location = f"/tasks/{request.task_id}"
                    render(resp, falcon.HTTP_200, existing.to_public())
                    return
            admission = admission_for(request)  # may ask git: here in the request thread, not in an actor
            result: SubmitResult = ask(self.supervisor, Submit(request, admission))
        except Conflict as exc:
            raise ApiError(falcon.HTTP_409, exc.message, holder_task_id=exc.holder) from None
        except ShuttingDown as exc:
            raise ApiError(falcon.HTTP_503, str(exc)) from None
        except ValidationError as exc:  # the supervisor computed the claims and the repository was unreadable
            raise validation_error(exc.field, exc.message) from None
        resp.location = f"/tasks/{request.task_id}"
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
        records = ask(self.supervisor, ListTasks(status, req.get_param("project_id"), limit, brief))
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

    def __init__(self, supervisor: pykka.ActorRef[Any], config: Config) -> None:
        self.supervisor = supervisor
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        record = ask(self.supervisor, GetTask(task_id))
        if record is None:
            raise ApiError(falcon.HTTP_404, f"no task {task_id}")
        render(resp, falcon.HTTP_200, record.to_public())

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        result = ask(self.supervisor, CancelTask(task_id))
        if result.record is None:
            raise ApiError(falcon.HTTP_404, f"no task {task_id}")
        record = result.record
        if result.ended is not None:
            # Answer with the final record: wait (here, not in an actor) for the group to be gone.
            result.ended.wait(self.config.kill_grace_seconds + 10)
            record = ask(self.supervisor, GetTask(task_id)) or record
        render(resp, falcon.HTTP_200, record.to_public())


    def on_post_messages(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        body = read_json(req)
        if not isinstance(body, dict):
            raise validation_error("body", "must be a JSON object")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise validation_error("text", "is required: a non-empty string")
        if "\x00" in text:
            raise validation_error("text", "must not contain NUL bytes")
        record, name = self._send(task_id, text)
        render(resp, falcon.HTTP_202, {"task_id": record.task_id, "run_id": record.run_id, "message_id": name})

    def on_post_close(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        record, _ = self._send(task_id, None)
        render(resp, falcon.HTTP_202, {"task_id": record.task_id, "run_id": record.run_id, "closing": True})

    def _send(self, task_id: str, text: str | None) -> tuple[Any, str]:
        """Have the task's actor write the message (or ``_close``); wait for its answer here, not in an actor."""
        try:
            result: AgentInputResult = ask(self.supervisor, SendToAgent(task_id, text))
            if result.record is None or result.reply is None:
                raise ApiError(falcon.HTTP_404, f"no task {task_id}")
            name = result.reply.result(timeout=ASK_TIMEOUT_SECONDS)
        except Conflict as exc:
            raise ApiError(falcon.HTTP_409, exc.message) from None
        except ShuttingDown as exc:
            raise ApiError(falcon.HTTP_503, str(exc)) from None
        except FutureTimeout:
            raise ApiError(falcon.HTTP_503, "the task did not answer in time; try again") from None
        return result.record, name


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        render(resp, falcon.HTTP_200, {"status": "ok"})
