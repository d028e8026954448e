"""The component schemas of the OpenAPI document (api/openapi.py), as Python data.

A Python module rather than a JSON file because the schemas quote the domain's own constants (the statuses,
execution modes, executors and limits): a copy in JSON would drift from them silently. Kept apart from the
operations so that each module stays small; :data:`SCHEMAS` is served as ``components.schemas``.
"""

from __future__ import annotations

from typing import Any

from host_runner.domain.names import EXECUTION_MODES, EXECUTORS
from host_runner.domain.record import CANCEL_REASONS, FAILURE_REASONS, STATUSES
from host_runner.domain.submission import MAX_PROMPT_BYTES, MAX_TIMEOUT_SECONDS


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
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
            "status_callback_events": {
                "type": "array", "items": {"enum": ["status", "progress"]}, "uniqueItems": True,
                "contains": {"const": "status"}, "default": ["status"],
                "description": "progress too: an agent CLI's messages, commands and file changes, coalesced (at most "
                               "one callback per 0.5 s per run, {\"status\": \"progress\", \"progress\": [items]})"},
            "timeout_seconds": {"type": "number", "minimum": 1, "maximum": MAX_TIMEOUT_SECONDS,
                                "description": "for agent tasks: the longest time without a result frame"},
            "executor": {"enum": list(EXECUTORS), "description": "default: HOST_RUNNER_EXECUTOR; only the executors "
                         "in HOST_RUNNER_ALLOWED_EXECUTORS may be named (by default HOST_RUNNER_EXECUTOR alone): "
                         "another is 422 with field 'executor'"},
            "group": {**ID, "description": "agent tasks: the group (one runs at a time); default "
                                           "workspace.project_id, one of the two is required"},
            "session_id": {"type": "string", "minLength": 1, "maxLength": 1000,
                           "description": "agent tasks: the session to resume (the agent's sessionId); claude "
                                          "tasks: the Claude Code session to resume (claude --resume)"},
            "agent_input": {
                "type": "object",
                "description": "agent tasks: the rest of the agent's stdin object; other keys are passed on as "
                               "given, but not prompt, sessionId or groupFolder; at most 64 KiB as JSON, and only "
                               "for an executor that speaks the agent protocol (else 422)",
                "properties": {"chatJid": STRING, "isMain": {"type": "boolean"},
                               "isScheduledTask": {"type": "boolean"}, "assistantName": STRING, "script": STRING},
            },
            "limits": {
                "type": "object",
                "additionalProperties": False,
                "description": "host tasks: lower limits than the runner's HOST_RUNNER_TASK_MEMORY_MAX, _PIDS_MAX and "
                               "_CPUS (more than those is 422 naming the field, e.g. limits.memory)",
                "properties": {
                    "memory": {"oneOf": [{"type": "integer", "minimum": 4 * 1024**2},
                                         {"type": "string", "pattern": "^[0-9.]+ *[kKmMgGtT]?i?[bB]?$"}],
                               "description": "bytes, or a size such as 512M"},
                    "pids": {"type": "integer", "minimum": 1},
                    "cpus": {"type": "number", "exclusiveMinimum": 0, "description": "cores, may be fractional"},
                },
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
            # shared-workspace runs in a git repository, once ended (README: Lock check); the terminal callback
            # carries the same fields when the record has them
            "lock_violations": {"type": "array", "items": STRING, "maxItems": 100,
                                "description": "paths changed outside the run's lock paths (and those other tasks "
                                               "held meanwhile), relative to the repository's top, sorted"},
            "lock_violations_count": {"type": "integer", "minimum": 0, "description": "all of them (exact)"},
            "lock_check_error": {"type": "string", "description": "why the lock check could not be made"},
            "worktree_follow_up": {
                "type": "object", "additionalProperties": False, "required": ["run_id", "branch", "commit", "patch"],
                "description": "isolated-worktree follow-ups: the earlier run of the task this one continues (its "
                               "branch, final HEAD and saved uncommitted work, applied before the command starts)",
                "properties": {"run_id": STRING, "branch": nullable(STRING), "commit": STRING, "patch": STRING}},
            "pid": nullable({"type": "integer", "description": "the task's process group"}),
            # host tasks in a cgroup, once ended (README: Resource limits); null where the kernel does not count it
            "memory_peak_bytes": nullable({"type": "integer"}),
            "cpu_seconds": nullable({"type": "number"}),
            "pids_peak": nullable({"type": "integer"}),
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
            "session_id": nullable({"type": "string", "description": "agent tasks: the session asked for; agent "
                                                                    "CLIs (codex): the session the run ended with"}),
            "requested_timeout_seconds": {
                "type": "number", "description": "agent tasks whose timeout_seconds was raised to the idle close "
                                                 "plus the close grace: what the submit asked for"},
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
            "failure_reason": {"enum": list(FAILURE_REASONS), "description": "failed runs: why"},
            "cancel_reason": {"enum": list(CANCEL_REASONS), "description": "canceled runs: who canceled"},
            # agent CLIs in their machine-readable mode (codex --json, claude): README "Agent CLI records"
            "final_message": nullable({"type": "string", "description": "the agent's last message"}),
            "usage": {"type": "object", "additionalProperties": False,
                      "required": ["input_tokens", "cached_input_tokens", "output_tokens"],
                      "properties": {"input_tokens": INTEGER, "cached_input_tokens": INTEGER,
                                     "output_tokens": INTEGER}},
            "files_changed": {"type": "array", "description": "the first 1,000 files the agent's patches changed",
                              "items": {"type": "object", "additionalProperties": False, "required": ["path", "kind"],
                                        "properties": {"path": STRING, "kind": STRING}}},
            "files_changed_count": INTEGER,
            "commands": {"type": "array", "description": "the newest commands the agent ran (up to 32 KiB)",
                         "items": {"type": "object", "additionalProperties": False,
                                   "required": ["command", "exit_code"],
                                   "properties": {"command": STRING, "exit_code": nullable(INTEGER)}}},
            "commands_count": INTEGER,
            "events": {"type": "integer", "description": "JSON events the agent CLI printed (all in stdout.log)"},
            "cost_usd": {"type": "number", "minimum": 0,
                         "description": "claude tasks: the run's cost in US dollars as Claude Code reports it"},
            "resumed_session_id": {"type": "string", "description": "codex and claude tasks submitted with a "
                                   "session_id: the session the run resumed (session_id: the one it ended with)"},
            "handoff": nullable(ref("Handoff")),
            "callbacks": {
                "type": "array", "items": ref("CallbackEvent"),
                "description": "on GET /tasks/{task_id} and cancel answers: the run's callback events in order",
            },
        },
    },
    "Handoff": {
        "type": "object",
        "description": "What the agent answered, for the orchestrator (also in the terminal callback)",
        "additionalProperties": False,
        "required": ["summary", "details"],
        "properties": {"summary": {"type": "string", "minLength": 1, "description": "at most 4 KiB"},
                       "details": nullable({"type": "string", "description": "the whole message when longer"})},
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
    "StreamEvent": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "event", "task_id", "run_id", "created_at", "data"],
        "properties": {
            "id": {"type": "integer", "minimum": 1, "description": "global, increasing"},
            "event": {"enum": ["status", "output", "progress"]},
            "task_id": STRING, "run_id": STRING, "created_at": STRING,
            "data": {"type": "object", "description": "the body a status callback of this event carries"},
        },
    },
    "EventPage": {
        "type": "object",
        "additionalProperties": False,
        "required": ["events", "next_after", "latest", "floor", "reset"],
        "properties": {
            "events": {"type": "array", "items": ref("StreamEvent")},
            "next_after": {"type": "integer", "description": "pass as after= for the next page"},
            "latest": {"type": "integer", "description": "the newest event's id"},
            "floor": {"type": "integer", "description": "events up to this id may have been removed by retention"},
            "reset": {"type": "boolean", "description": "after < floor: some events after it are gone"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "disk"],
        "additionalProperties": False,
        "properties": {"status": {"const": "ok"},
                       "disk": {"enum": ["ok", "low"],
                                "description": "low: below HOST_RUNNER_MIN_FREE_BYTES free, submits are refused (507)"},
                       "cgroups": {"type": "string", "description": "only when task cgroups are not in use: "
                                   "'unavailable (reason)' or 'off ...' (README: Resource limits)"}},
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


__all__ = ["ID", "SCHEMAS", "STRING", "TIMESTAMP", "nullable", "ref"]
