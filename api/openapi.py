"""The OpenAPI 3.1 document served at ``/openapi.json``, written as Python data.

Adding an endpoint is one :class:`Operation` in :data:`OPERATIONS` (plus a schema in
:data:`api.openapi_schemas.SCHEMAS` if its body is new). Every operation gets the errors every route can answer
(401 with a token set, 403 and 415 from the request guard, 500) and, when it asks an actor, 503. The test-suite
validates every response it sees against this document (tests/support/openapi_check.py), so an endpoint, field or
status code missing here fails the tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from api.openapi_debug_schemas import DEBUG_SCHEMAS
from api.openapi_schemas import SCHEMAS, STRING, ref
from host_runner.domain.record import STATUSES

VERSION = "1.0.0"


@dataclass(frozen=True)
class Operation:
    """One method on one path. ``responses`` maps a status code to (description, schema name or media map)."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[int, tuple[str, Any]]
    parameters: tuple[dict[str, Any], ...] = ()
    request_body: str | None = None
    asks_actor: bool = True
    public: bool = False  # answered without the token (/health)
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": STRING}
LOCATION = {"Location": {"schema": STRING, "required": True, "description": "/tasks/{task_id}"}}
RETRY_AFTER = {"Retry-After": {"schema": STRING, "required": True, "description": "seconds"}}
LOG_HEADERS = {
    "X-Run-Id": {"schema": STRING, "required": True, "description": "the run the bytes are from"},
    "X-Task-Status": {"schema": {"enum": list(STATUSES)}, "required": True,
                      "description": "the run's status when the request was answered"},
    "X-Log-Offset": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True,
                     "description": "where the returned bytes start"},
    "X-Next-Offset": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": False,
                      "description": "without follow: the offset to ask for next"},
    "X-Log-Size": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": False,
                   "description": "without follow: the file's size now"},
}
BINARY: dict[str, Any] = {"application/octet-stream": {}}  # OpenAPI 3.1: raw bytes need no schema
TEXT = {"text/plain": {"schema": {"type": "string"}}}
HTML = {"text/html": {"schema": {"type": "string"}}}
EVENTS_ANSWER = {"text/event-stream": {"schema": {"type": "string"}}, "application/json": {"schema": ref("EventPage")}}
EVENT_PARAMETERS: tuple[dict[str, Any], ...] = (
    query("after", {"type": "integer", "minimum": 0}, "events after this id (else Last-Event-ID, else all kept)"),
    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string", "pattern": "^[0-9]+$"},
     "description": "sent by a reconnecting EventSource: events after this id"},
    query("project_id", STRING, "only tasks of this workspace.project_id"),
    query("status", {"enum": list(STATUSES)}, "only status events with this status"),
    query("include", {"enum": ["progress"]}, "progress too: agents' result frames (event: output) and agent CLIs' "
          "messages, commands and file changes (event: progress)"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
          "without a stream: at most this many events"),
)
EVENTS_DESCRIPTION = (
    "Stream events: `id:` the event's global id (increasing; resume with Last-Event-ID), `event:` its kind "
    "(status, output, progress), `data:` the JSON body a status callback of it would carry (no token or secret). The "
    "stream's own events carry no id: `reset` first when retention removed events after the client's position, "
    "`overflow` last when the client fell more than HOST_RUNNER_STREAM_MAX_BEHIND events behind (reconnect to go "
    "on). A comment line every HOST_RUNNER_STREAM_KEEPALIVE_SECONDS while idle; the stream ends when the runner "
    "stops."
)

OPERATIONS: list[Operation] = [
    Operation("post", "/tasks/submit", "submitTask", "Submit a task (the original host-runner's path)",
              {200: ("the same task_id and run_id were submitted before: that record, nothing started", "TaskRecord"),
               202: ("accepted: the new record", "TaskRecord"), 400: ("malformed JSON", "Error"),
               409: ("the task is active with another run, or a lock path is held", "Error"),
               413: ("the body is over 1 MiB", "Error"), 415: ("the body is not JSON", "Error"),
               422: ("a field is invalid (named in `field`)", "Error"),
               429: ("HOST_RUNNER_MAX_QUEUED tasks are queued already: nothing was stored, retry later", "Error"),
               507: ("the runner's data disk is full, or below HOST_RUNNER_MIN_FREE_BYTES free: nothing was stored, "
                     "retry later", "Error")},
              request_body="SubmitRequest", headers={200: LOCATION, 202: LOCATION, 429: RETRY_AFTER}),
    Operation("post", "/tasks", "submitTaskAlias", "Submit a task (same as POST /tasks/submit)",
              {200: ("an identical earlier submission", "TaskRecord"), 202: ("accepted", "TaskRecord"),
               400: ("malformed JSON", "Error"), 409: ("collision", "Error"), 413: ("too large", "Error"),
               415: ("not JSON", "Error"), 422: ("invalid field", "Error"), 429: ("queue full", "Error"),
               507: ("data disk full or low", "Error")},
              request_body="SubmitRequest", headers={200: LOCATION, 202: LOCATION, 429: RETRY_AFTER}),
    Operation("get", "/tasks", "listTasks", "The newest run of each task, newest first",
              {200: ("the tasks", "TaskList"), 422: ("a bad filter", "Error")},
              parameters=(query("status", {"enum": list(STATUSES)}, "only this status"),
                          query("project_id", STRING, "only this workspace.project_id"),
                          query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                                "at most this many"),
                          query("brief", {"type": "boolean", "default": False},
                                "leave out stdout, stderr and agent outputs (TaskBrief records): for polling "
                                "many tasks, as the dashboard does"))),
    Operation("get", "/tasks/{task_id}", "getTask", "The task's newest run (output tails live while running)",
              {200: ("the record", "TaskRecord"), 404: ("no such task", "Error")}, parameters=(TASK_ID,)),
    Operation("post", "/tasks/{task_id}/cancel", "cancelTask",
              "Stop an active task and answer with its final record; a finished task is returned unchanged",
              {200: ("the record", "TaskRecord"), 404: ("no such task", "Error"),
               507: ("a queued task could not be recorded as canceled (data disk full); it stays queued", "Error")},
              parameters=(TASK_ID,)),
    Operation("post", "/tasks/{task_id}/messages", "sendAgentMessage",
              "Agent tasks: hand a follow-up message to the running agent (a file in its IPC input directory)",
              {202: ("written for the agent to pick up", "MessageAccepted"), 400: ("malformed JSON", "Error"),
               404: ("no such task", "Error"),
               409: ("the task is not running (queued, ended, closing) or not an agent task", "Error"),
               413: ("the body is over 1 MiB", "Error"), 415: ("the body is not JSON", "Error"),
               422: ("no non-empty text", "Error")},
              parameters=(TASK_ID,), request_body="AgentMessage"),
    Operation("post", "/tasks/{task_id}/close", "closeAgent",
              "Agent tasks: ask the agent to finish its current query and exit (_close); again while closing: 202",
              {202: ("_close written", "CloseAccepted"), 404: ("no such task", "Error"),
               409: ("the task is not running or not an agent task", "Error")},
              parameters=(TASK_ID,)),
    Operation("get", "/tasks/{task_id}/logs", "getTaskLogs",
              "A run's stdout or stderr from an offset; with follow=true, streamed (chunked) until the run ends",
              {200: ("the bytes (all of them until the run ends, with follow)", BINARY),
               404: ("no such task or run", "Error"), 422: ("a bad parameter", "Error"),
               429: ("too many followers (HOST_RUNNER_MAX_LOG_FOLLOWERS)", "Error")},
              parameters=(TASK_ID,
                          query("stream", {"enum": ["stdout", "stderr"], "default": "stdout"}, "which file"),
                          query("offset", {"type": "integer", "minimum": 0, "default": 0}, "first byte"),
                          query("limit", {"type": "integer", "minimum": 1, "maximum": 16 * 1024 * 1024,
                                          "default": 1024 * 1024}, "at most this many bytes (without follow)"),
                          query("follow", {"type": "boolean", "default": False}, "stream until the run ends"),
                          query("run_id", STRING, "another run than the newest")),
              headers={200: LOG_HEADERS}),
    Operation("get", "/events", "events",
              "Every task's events (status changes; agents' frames with include=progress): a resumable "
              "Server-Sent Events stream with Accept: text/event-stream, else one JSON page",
              {200: ("the stream (text/event-stream), or a page of events", EVENTS_ANSWER),
               422: ("a bad parameter or Last-Event-ID", "Error"),
               429: ("too many streams and log followers (HOST_RUNNER_MAX_LOG_FOLLOWERS)", "Error")},
              parameters=EVENT_PARAMETERS + (query("task_id", STRING, "only this task's events"),),
              asks_actor=False, description=EVENTS_DESCRIPTION),
    Operation("get", "/tasks/{task_id}/events", "taskEvents", "One task's events, as GET /events",
              {200: ("the stream (text/event-stream), or a page of events", EVENTS_ANSWER),
               404: ("no such task", "Error"), 422: ("a bad parameter or Last-Event-ID", "Error"),
               429: ("too many streams and log followers (HOST_RUNNER_MAX_LOG_FOLLOWERS)", "Error")},
              parameters=(TASK_ID, *EVENT_PARAMETERS)),
    Operation("get", "/debug/actors", "debugActors",
              "Every live actor and what it owns, the queue, the reservations and the callback lanes",
              {200: ("the report; actors that did not answer in time are in not_answering", "DebugActors"),
               422: ("a bad timeout", "Error")},
              parameters=(query("timeout", {"type": "number", "minimum": 0, "maximum": 10, "default": 1},
                                "seconds to wait for all answers together"),),
              asks_actor=False),
    Operation("get", "/debug/threads", "debugThreads", "The current stack of every thread of the runner process",
              {200: ("the stacks (text/plain with format=text)", {"application/json": {"schema": ref("DebugThreads")},
                                                                   **TEXT}),
               422: ("a bad format", "Error")},
              parameters=(query("format", {"enum": ["json", "text"], "default": "json"}, "json or text"),),
              asks_actor=False),
    Operation("get", "/metrics", "metrics", "Prometheus metrics (text exposition format 0.0.4)",
              {200: ("the metrics", TEXT)}, asks_actor=False),
    Operation("get", "/openapi.json", "openapi", "This document",
              {200: ("the OpenAPI 3.1 document", {"application/json": {"schema": {
                  "type": "object", "required": ["openapi", "info", "paths"]}}})}, asks_actor=False),
    Operation("get", "/", "dashboard", "The dashboard page (HTML); never needs the token",
              {200: ("the page: it asks for the token and sends it as a bearer header on its API calls", HTML)},
              asks_actor=False, public=True,
              description="A static shell with no data in it; everything it shows comes from the token-protected "
                          "routes. Served without the token because a browser cannot send a bearer header when "
                          "it opens a link, and a token in the URL would leak into history and logs."),
    Operation("get", "/ui", "dashboardAlias", "The dashboard page (same as GET /); never needs the token",
              {200: ("the page", HTML)}, asks_actor=False, public=True),
    Operation("get", "/ui/{name}", "dashboardAsset", "The dashboard's script (app.js) or stylesheet (app.css)",
              {200: ("the file", {"text/javascript": {}, "text/css": {}}),
               404: ("no such file", "Error")},
              parameters=({"name": "name", "in": "path", "required": True, "schema": STRING,
                           "description": "app.js or app.css"},),
              asks_actor=False, public=True),
    Operation("get", "/health", "health", "Liveness; never needs the token",
              {200: ("alive", "Health")}, asks_actor=False, public=True),
]


def _content(spec: Any) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"application/json": {"schema": ref(spec)}}
    return spec


def _operation(operation: Operation) -> dict[str, Any]:
    responses: dict[int, tuple[str, Any]] = dict(operation.responses)
    if not operation.public:
        responses.setdefault(401, ("no or a wrong bearer token (only when HOST_RUNNER_API_TOKEN is set)", "Error"))
    if operation.asks_actor:
        responses.setdefault(503, ("the runner is shutting down or too busy to answer in time", "Error"))
    responses.setdefault(500, ("an internal error (details only in the runner's log)", "Error"))
    # The request guard (api/request_guard.py), before any route: browsers of other origins and foreign names.
    responses.setdefault(403, ("a request from a web page of another origin or site, or (except on /health) under a "
                               "Host name the runner does not answer to (HOST_RUNNER_ALLOWED_HOSTS)", "Error"))
    responses.setdefault(415, ("a body not declared 'Content-Type: application/json'", "Error"))
    # What gunicorn answers itself, before the application sees the request (as JSON: api/gunicorn_worker.py).
    responses.setdefault(400, ("a malformed HTTP request", "Error"))
    responses.setdefault(408, ("the request line and headers did not arrive within HOST_RUNNER_HEADER_TIMEOUT_SECONDS "
                               "(the connection is closed)", "Error"))
    responses.setdefault(414, ("a request line longer than the server reads (4094 bytes)", "Error"))
    responses.setdefault(431, ("a header block larger than the server reads (over 100 fields, a field over 8190 "
                               "bytes, or over 64 KiB with the request line)", "Error"))
    rendered: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "responses": {},
    }
    if operation.description:
        rendered["description"] = operation.description
    if operation.parameters:
        rendered["parameters"] = list(operation.parameters)
    if operation.request_body:
        rendered["requestBody"] = {"required": True, "content": _content(operation.request_body)}
    if operation.public:
        rendered["security"] = []
    for code in sorted(responses):
        description, content = responses[code]
        response: dict[str, Any] = {"description": description, "content": _content(content)}
        if code in operation.headers:
            response["headers"] = operation.headers[code]
        rendered["responses"][str(code)] = response
    return rendered


def openapi_document(operations: list[Operation] | None = None) -> dict[str, Any]:
    """The whole document (a fresh copy: callers may change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS if operations is None else operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "host-runner",
            "version": VERSION,
            "description": "Runs coding agents and commands on the host for orchestrators that live elsewhere. "
                           "Every error is JSON (the Error schema); no traceback ever reaches a client.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerToken": []}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **DEBUG_SCHEMAS},
            "securitySchemes": {"bearerToken": {
                "type": "http", "scheme": "bearer",
                "description": "HOST_RUNNER_API_TOKEN; required on every path but /health when it is set",
            }},
        },
    })


class OpenApiResource:
    """``GET /openapi.json``."""

    def __init__(self) -> None:
        self.document = openapi_document()

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = self.document
