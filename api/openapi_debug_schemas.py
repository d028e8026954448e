"""The OpenAPI schemas of the debugging endpoints (``/debug/actors``, ``/debug/threads``): what the actors report
about themselves. Kept apart from :mod:`api.openapi_schemas` (the task API's) so that each stays readable;
:mod:`api.openapi` puts both in the document."""

from __future__ import annotations

from typing import Any

from api.openapi_schemas import STRING, nullable, ref

__all__ = ["DEBUG_SCHEMAS"]

DEBUG_SCHEMAS: dict[str, dict[str, Any]] = {
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
