"""How a run is laid out in the store's ``runs`` table: a :class:`TaskRecord` and its :class:`TaskRequest` to
and from a row (used by :mod:`host_runner.store.sqlite`)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from host_runner.domain.limits import TaskLimits
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest, Workspace
from host_runner.domain.seams import mode_rules

__all__ = ["BRIEF_COLUMNS", "PLAIN_COLUMNS", "json_request", "record_row", "request_json", "row_record"]

# Columns a TaskRecord maps onto one to one (the rest are converted by record_row / row_record).
PLAIN_COLUMNS = (
    "task_id", "run_id", "status", "message", "execution_mode", "executor", "timeout_seconds", "created_at",
    "updated_at", "started_at", "finished_at", "exit_code", "pid", "pid_start_ticks", "container_id", "log_dir",
)


# What a brief listing reads: everything a TaskRecord needs, with the bulky parts replaced in SQL.
BRIEF_COLUMNS = ", ".join((*PLAIN_COLUMNS, "workspace", "'' AS stdout_tail", "'' AS stderr_tail",
                            "json_remove(extra, '$.outputs') AS extra"))


def record_row(record: TaskRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in PLAIN_COLUMNS}
    row["workspace"] = json.dumps(record.workspace.to_json()) if record.workspace else None
    row["project_id"] = (
        str(record.workspace.project_id) if record.workspace and record.workspace.project_id is not None else None
    )
    row["stdout_tail"] = record.stdout
    row["stderr_tail"] = record.stderr
    row["extra"] = json.dumps(record.extra)
    return row


def row_record(row: sqlite3.Row) -> TaskRecord:
    workspace = None
    if row["workspace"]:
        data = json.loads(row["workspace"])
        data["lock_paths"] = tuple(data.get("lock_paths", ()))
        workspace = Workspace(**data)
    return TaskRecord(
        **{name: row[name] for name in PLAIN_COLUMNS},
        workspace=workspace,
        stdout=row["stdout_tail"],
        stderr=row["stderr_tail"],
        extra=json.loads(row["extra"]),
    )


def request_json(request: TaskRequest) -> str:
    data = asdict(request)
    data.pop("status_callback_token")  # kept in its own column, never copied into anything shown
    return json.dumps(data)


def json_request(text: str, token: str | None) -> TaskRequest:
    data = json.loads(text)
    if data.get("workspace") is not None:
        data["workspace"]["lock_paths"] = tuple(data["workspace"].get("lock_paths", ()))
        data["workspace"] = Workspace(**data["workspace"])
    # Only the modes that use a sandbox rebuild it (older rows of other modes may hold a raw, unvalidated one).
    data["sandbox"] = mode_rules(data["execution_mode"]).load_sandbox(data.get("sandbox"))
    data["limits"] = TaskLimits.from_json(data.get("limits"))  # absent in rows written before limits existed
    data["status_callback_events"] = tuple(data.get("status_callback_events") or ("status",))
    return TaskRequest(**data, status_callback_token=token)
