"""The OpenAPI 3.1 document served at ``/openapi.json``, written as Python data.

Adding an endpoint is one :class:`Operation` in :data:`OPERATIONS` (plus a schema in :data:`SCHEMAS` if its
body is new). Every operation gets the errors every route can answer (401 with a token set, 403 and 415 from the
request guard, 500) and, when it asks an actor, 503. The test-suite validates every response it sees against this document
(tests/openapi_check.py), so an endpoint, field or status code missing here fails the tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from host_runner.domain.names import EXECUTION_MODES, EXECUTORS
from host_runner.domain.record import STATUSES
from host_runner.domain.submission import MAX_PROMPT_BYTES, MAX_TIMEOUT_SECONDS

VERSION = "1.0.0"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
TIMESTAMP = {"type": "string", "description": "ISO-8601 UTC, e.g. 2026-11-23T09:00:00.123456Z"}
ID = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._:@+=-]{0,199}$"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error. `field` names the offending field on 422; `holder_task_id` the active task "
                       "holding what a 409 collided with.",
        "required": ["error", "detail"],
        "additionalProperties": False,
        "properties": {
            "error": {"type": "string", "description": "the HTTP status title"},
            "detail": {"type": "string", "description": "what is wrong, for people"},
            "field": STRING,
            "holder_task_id": nullable(STRING),
        },
    },
    "Workspace": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "project_id": {"type": ["integer", "string"]},
            "project_root": {"type": "string", "description": "absolute, existing directory"},
            "lock_paths": {"type": "array", "items": STRING, "description": "absolute paths inside project_root"},
            "worktree_path": STRING,
            "git_branch": STRING,
        },
    },
    "SubmitRequest": {
        "type": "object",
        "description": "Unknown fields (such as handoff_context) are accepted and ignored.",
        "required": ["task_id", "run_id", "prompt"],
        "properties": {
            "task_id": ID,
            "run_id": ID,
            "prompt": {"type": "string", "minLength": 1, "description": f"at most {MAX_PROMPT_BYTES} bytes"},
            "execution_mode": {"enum": list(EXECUTION_MODES), "default": "no-workspace"},
            "workspace": ref("Workspace"),
            "sandbox": {"type": "object"},
            "status_callback_url": {"type": "string", "format": "uri",
                                    "description": "http or https; when HOST_RUNNER_CALLBACK_ALLOWED_HOSTS is set, "
                                                   "its host must be listed there (else 422)"},
            "status_callback_token": {"type": "string", "writeOnly": True},
            "timeout_seconds": {"type": "number", "minimum": 1, "maximum": MAX_TIMEOUT_SECONDS,
                                "description": "for agent tasks: the longest time without a result frame"},
            "executor": {"enum": list(EXECUTORS), "description": "default: HOST_RUNNER_EXECUTOR; only the executors "
                         "in HOST_RUNNER_ALLOWED_EXECUTORS may be named (by default HOST_RUNNER_EXECUTOR alone): "
                         "another is 422 with field 'executor'"},
            "group": {**ID, "description": "agent tasks: the group (one runs at a time); default "
                                           "workspace.project_id, one of the two is required"},
            "session_id": {"type": "string", "minLength": 1, "maxLength": 1000,
                           "description": "agent tasks: the session to resume (the agent's sessionId)"},
            "agent_input": {
                "type": "object",
                "description": "agent tasks: the rest of the agent's stdin object; other keys are passed on as "
                               "given, but not prompt, sessionId or groupFolder",
                "properties": {"chatJid": STRING, "isMain": {"type": "boolean"},
                               "isScheduledTask": {"type": "boolean"}, "assistantName": STRING, "script": STRING},
            },
        },
    },
    "AgentFrame": {
        "type": "object",
        "description": "A result frame exactly as the agent printed it",
        "properties": {"status": STRING, "result": nullable(STRING), "newSessionId": STRING, "error": STRING},
    },
    "AgentMessage": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1}},
    },
    "MessageAccepted": {
        "type": "object",
        "additionalProperties": False,
        "required": ["task_id", "run_id", "message_id"],
        "properties": {"task_id": STRING, "run_id": STRING,
                       "message_id": {"type": "string", "description": "the message file's name in ipc/input"}},
    },
    "CloseAccepted": {
        "type": "object",
        "additionalProperties": False,
        "required": ["task_id", "run_id", "closing"],
        "properties": {"task_id": STRING, "run_id": STRING, "closing": {"const": True}},
    },
    "TaskRecord": {
        "type": "object",
        "description": "One run of a task; GET /tasks/{task_id} shows the newest run.",
        "additionalProperties": False,
        "required": ["task_id", "run_id", "execution_mode", "status", "executor", "created_at", "updated_at",
                     "stdout", "stderr", "timeout_seconds"],
        "properties": {
            "task_id": STRING,
            "run_id": STRING,
            "execution_mode": {"enum": list(EXECUTION_MODES)},
            "workspace": nullable(ref("Workspace")),
            "status": {"enum": list(STATUSES)},
            "message": nullable(STRING),
            "executor": STRING,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "started_at": nullable(TIMESTAMP),
            "finished_at": nullable(TIMESTAMP),
            "exit_code": nullable({"type": "integer"}),
            "stdout": {"type": "string", "description": "the last 64 KiB"},
            "stderr": {"type": "string", "description": "the last 64 KiB"},
            "container_id": nullable(STRING),
            "worktree_cleanup_attempted": nullable({"type": "boolean"}),
            "worktree_cleanup_succeeded": nullable({"type": "boolean"}),
            "worktree_cleanup_message": nullable(STRING),
            # isolated-worktree runs (README: Isolated worktrees)
            "worktree_base_commit": nullable(STRING),
            "worktree_previous_branch_tip": nullable(STRING),
            "worktree_final_head": nullable(STRING),
            "worktree_commits": nullable({"type": "integer"}),
            "worktree_changed_files": nullable({"type": "array", "items": STRING}),
            "worktree_changed_files_count": nullable({"type": "integer"}),
            "worktree_patch": nullable(STRING),
            "worktree_uncommitted_patch": nullable(STRING),
            "worktree_preserve_error": nullable(STRING),
            "pid": nullable({"type": "integer", "description": "the task's process group"}),
            "timeout_seconds": {"type": "number"},
            "logs": nullable({
                "type": "object",
                "additionalProperties": False,
                "required": ["dir", "stdout", "stderr"],
                "properties": {"dir": STRING, "stdout": STRING, "stderr": STRING},
            }),
            "queue_position": {"type": "integer", "minimum": 1,
                               "description": "queued tasks: 1 + the tasks queued before it"},
            "group_queue_position": {"type": "integer", "minimum": 1,
                                     "description": "queued agent tasks: the same among its group's (1 = next)"},
            "group": nullable(STRING),
            "session_id": nullable(STRING),
            "outputs": {"type": "array", "items": ref("AgentFrame"),
                        "description": "agent tasks: the newest result frames (up to 256 KiB, at least the last)"},
            "frames": {"type": "integer", "description": "agent tasks: result frames so far"},
            "outputs_dropped": {"type": "integer", "description": "frames no longer in outputs (all in stdout.log)"},
            "invalid_frames": {"type": "integer", "description": "frames skipped (invalid JSON, not an object, "
                                                                 "over 8 MiB)"},
            "new_session_id": nullable(STRING),
            "last_output_at": TIMESTAMP,
            "closing": {"type": "boolean", "description": "_close was written: no more messages"},
            "run_log": {"type": "string", "description": "agent tasks, once ended: the per-run log file"},
            "callbacks": {
                "type": "array", "items": ref("CallbackEvent"),
                "description": "on GET /tasks/{task_id} and cancel answers: the run's callback events in order",
            },
        },
    },
    "CallbackEvent": {
        "type": "object",
        "description": "Delivery state of one callback event (never its URL or token).",
        "additionalProperties": False,
        "required": ["event_id", "sequence", "status", "state", "attempts", "last_error", "created_at", "updated_at",
                     "delivered_at"],
        "properties": {
            "event_id": STRING,
            "sequence": {"type": "integer", "minimum": 1},
            "status": STRING,
            "state": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": nullable(STRING),
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "delivered_at": nullable(TIMESTAMP),
        },
    },
    "TaskList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["tasks", "count"],
        "properties": {"tasks": {"type": "array", "items": {"oneOf": [ref("TaskRecord"), ref("TaskBrief")]}},
                       "count": {"type": "integer"}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": {"const": "ok"}},
    },
    "ActorEntry": {
        "type": "object",
        "additionalProperties": False,
        "required": ["class", "urn", "inbox_depth", "answered", "problem", "state"],
        "properties": {
            "class": STRING,
            "urn": STRING,
            "inbox_depth": nullable({"type": "integer", "description": "messages waiting when the report began"}),
            "answered": {"type": "boolean"},
            "problem": nullable({"type": "string", "description": "why there is no answer"}),
            "state": {
                "type": "object",
                "description": "the actor's own description ({} without an answer): age_seconds, and for a "
                               "TaskActor task_id, run_id, status, phase, executor, pid, container_id, "
                               "started_at, timeout_seconds, adopted, cancel_requested, timed_out (agent tasks "
                               "also group, frames, invalid_frames, closing, idle_for_seconds, output_offset)",
            },
        },
    },
    "SupervisorState": {
        "type": "object",
        "required": ["accepting", "max_concurrency", "running", "queued", "running_tasks", "queue"],
        "properties": {
            "age_seconds": {"type": "number"},
            "accepting": {"type": "boolean"},
            "max_concurrency": {"type": "integer"},
            "running": {"type": "integer"},
            "queued": {"type": "integer"},
            "running_tasks": {"type": "array", "items": {
                "type": "object", "required": ["task_id", "run_id", "actor_urn"],
                "properties": {"task_id": STRING, "run_id": STRING, "actor_urn": STRING,
                               "group": {"type": "string", "description": "agent tasks: their group"}},
            }},
            "queue": {"type": "array", "description": "in submission order (an agent task whose group is busy "
                                                      "lets the ones behind it go first)", "items": {
                "type": "object", "required": ["task_id", "run_id"],
                "properties": {"task_id": STRING, "run_id": STRING,
                               "group": {"type": "string", "description": "agent tasks: their group"}},
            }},
        },
    },
    "Reservation": {
        "type": "object",
        "required": ["task_id", "run_id", "kind", "label", "key"],
        "properties": {
            "task_id": STRING, "run_id": STRING, "kind": {"enum": ["path", "name"]}, "label": STRING,
            "key": {"type": "string", "description": "a real path, or a name such as a branch"},
        },
    },
    "CallbackLane": {
        "type": "object",
        "required": ["task_id", "run_id", "url", "pending", "sending", "next_status", "attempts", "last_error"],
        "properties": {
            "task_id": STRING, "run_id": STRING,
            "url": nullable({"type": "string", "description": "without user info or query"}),
            "pending": {"type": "integer"}, "sending": {"type": "boolean"}, "next_status": nullable(STRING),
            "attempts": {"type": "integer"}, "last_error": nullable(STRING),
        },
    },
    "DebugActors": {
        "type": "object",
        "additionalProperties": False,
        "required": ["timeout_seconds", "count", "not_answering", "actors", "supervisor", "reservations",
                     "callback_lanes"],
        "properties": {
            "timeout_seconds": {"type": "number"},
            "count": {"type": "integer"},
            "not_answering": {"type": "array", "items": {
                "type": "object", "required": ["class", "urn", "problem"],
                "properties": {"class": STRING, "urn": STRING, "problem": nullable(STRING)},
            }},
            "actors": {"type": "array", "items": ref("ActorEntry")},
            "supervisor": nullable(ref("SupervisorState")),
            "reservations": nullable({"type": "array", "items": ref("Reservation")}),
            "callback_lanes": nullable({"type": "array", "items": ref("CallbackLane")}),
        },
    },
    "DebugThreads": {
        "type": "object",
        "additionalProperties": False,
        "required": ["count", "threads"],
        "properties": {
            "count": {"type": "integer"},
            "threads": {"type": "array", "items": {
                "type": "object",
                "required": ["name", "ident", "daemon", "stack"],
                "properties": {
                    "name": STRING, "ident": {"type": "integer"}, "daemon": nullable({"type": "boolean"}),
                    "stack": {"type": "array", "description": "outermost frame first", "items": {
                        "type": "object", "required": ["file", "line", "function", "code"],
                        "properties": {"file": STRING, "line": nullable({"type": "integer"}),
                                       "function": STRING, "code": STRING},
                    }},
                },
            }},
        },
    },
}

# GET /tasks?brief=true: a TaskRecord without its output tails and agent outputs (api.resources.BRIEF_OMITS).
_BRIEF_OMITS = ("stdout", "stderr", "outputs")
SCHEMAS["TaskBrief"] = {
    "type": "object",
    "description": "A task's newest run as GET /tasks?brief=true lists it: the record without stdout, stderr and "
                   "agent outputs (read those from GET /tasks/{task_id} or its logs).",
    "additionalProperties": False,
    "required": [name for name in SCHEMAS["TaskRecord"]["required"] if name not in _BRIEF_OMITS],
    "properties": {name: schema for name, schema in SCHEMAS["TaskRecord"]["properties"].items()
                   if name not in _BRIEF_OMITS},
}


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

OPERATIONS: list[Operation] = [
    Operation("post", "/tasks/submit", "submitTask", "Submit a task (the original host-runner's path)",
              {200: ("the same task_id and run_id were submitted before: that record, nothing started", "TaskRecord"),
               202: ("accepted: the new record", "TaskRecord"), 400: ("malformed JSON", "Error"),
               409: ("the task is active with another run, or a lock path is held", "Error"),
               413: ("the body is over 1 MiB", "Error"), 415: ("the body is not JSON", "Error"),
               422: ("a field is invalid (named in `field`)", "Error"),
               507: ("the runner's data disk is full: nothing was stored, retry later", "Error")},
              request_body="SubmitRequest", headers={200: LOCATION, 202: LOCATION}),
    Operation("post", "/tasks", "submitTaskAlias", "Submit a task (same as POST /tasks/submit)",
              {200: ("an identical earlier submission", "TaskRecord"), 202: ("accepted", "TaskRecord"),
               400: ("malformed JSON", "Error"), 409: ("collision", "Error"), 413: ("too large", "Error"),
               415: ("not JSON", "Error"), 422: ("invalid field", "Error"), 507: ("data disk full", "Error")},
              request_body="SubmitRequest", headers={200: LOCATION, 202: LOCATION}),
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
            "schemas": SCHEMAS,
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
