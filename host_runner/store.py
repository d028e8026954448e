"""The SQLite store (stdlib ``sqlite3``, WAL): every run of every task and the request that started it.

Actors write through one :class:`Store` shared by the process; a lock serialises use of its single
connection, which is cheap because every statement is small. Readers see committed state only, so a
transition written here is never reported before it is durable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from host_runner.models import ACTIVE_STATUSES, TaskRecord, TaskRequest, Workspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT,
    execution_mode  TEXT NOT NULL,
    executor        TEXT NOT NULL,
    project_id      TEXT,
    workspace       TEXT,
    request         TEXT NOT NULL,
    callback_token  TEXT,
    timeout_seconds REAL NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    exit_code       INTEGER,
    pid             INTEGER,
    pid_start_ticks INTEGER,
    container_id    TEXT,
    stdout_tail     TEXT NOT NULL DEFAULT '',
    stderr_tail     TEXT NOT NULL DEFAULT '',
    log_dir         TEXT,
    extra           TEXT NOT NULL DEFAULT '{}',
    UNIQUE (task_id, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task_id, seq);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
"""

# Columns a TaskRecord maps onto one to one (the rest are converted by _record_row / _row_record).
_PLAIN = (
    "task_id", "run_id", "status", "message", "execution_mode", "executor", "timeout_seconds", "created_at",
    "updated_at", "started_at", "finished_at", "exit_code", "pid", "pid_start_ticks", "container_id", "log_dir",
)


def _record_row(record: TaskRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _PLAIN}
    row["workspace"] = json.dumps(record.workspace.to_json()) if record.workspace else None
    row["project_id"] = (
        str(record.workspace.project_id) if record.workspace and record.workspace.project_id is not None else None
    )
    row["stdout_tail"] = record.stdout
    row["stderr_tail"] = record.stderr
    row["extra"] = json.dumps(record.extra)
    return row


def _row_record(row: sqlite3.Row) -> TaskRecord:
    workspace = None
    if row["workspace"]:
        data = json.loads(row["workspace"])
        data["lock_paths"] = tuple(data.get("lock_paths", ()))
        workspace = Workspace(**data)
    return TaskRecord(
        **{name: row[name] for name in _PLAIN},
        workspace=workspace,
        stdout=row["stdout_tail"],
        stderr=row["stderr_tail"],
        extra=json.loads(row["extra"]),
    )


def _request_json(request: TaskRequest) -> str:
    data = asdict(request)
    data.pop("status_callback_token")  # kept in its own column, never copied into anything shown
    return json.dumps(data)


def _json_request(text: str, token: str | None) -> TaskRequest:
    data = json.loads(text)
    if data.get("workspace") is not None:
        data["workspace"]["lock_paths"] = tuple(data["workspace"].get("lock_paths", ()))
        data["workspace"] = Workspace(**data["workspace"])
    return TaskRequest(**data, status_callback_token=token)


class Store:
    """Persistent runs. Thread-safe; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of this process (only an OS crash can lose the last commits).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        path.chmod(0o600)  # the store holds callback tokens

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, record: TaskRecord, request: TaskRequest) -> None:
        """Store a new run; raises ``sqlite3.IntegrityError`` if (task_id, run_id) exists."""
        row = _record_row(record)
        row["request"] = _request_json(request)
        row["callback_token"] = request.status_callback_token
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        with self._lock:
            self._db.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row)

    def update(self, record: TaskRecord) -> None:
        """Write the current state of a run (a transition)."""
        row = _record_row(record)
        assignments = ", ".join(f"{name} = :{name}" for name in row if name not in ("task_id", "run_id"))
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE runs SET {assignments} WHERE task_id = :task_id AND run_id = :run_id", row
            )
        if cursor.rowcount != 1:
            raise KeyError(f"no run {record.task_id}/{record.run_id} to update")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def get(self, task_id: str, run_id: str | None = None) -> TaskRecord | None:
        """One run, or the newest run of the task when ``run_id`` is None."""
        if run_id is None:
            rows = self._query("SELECT * FROM runs WHERE task_id = ? ORDER BY seq DESC LIMIT 1", (task_id,))
        else:
            rows = self._query("SELECT * FROM runs WHERE task_id = ? AND run_id = ?", (task_id, run_id))
        return _row_record(rows[0]) if rows else None

    def get_request(self, task_id: str, run_id: str) -> TaskRequest | None:
        rows = self._query(
            "SELECT request, callback_token FROM runs WHERE task_id = ? AND run_id = ?", (task_id, run_id)
        )
        return _json_request(rows[0]["request"], rows[0]["callback_token"]) if rows else None

    def list(self, *, status: str | None = None, project_id: str | None = None, limit: int = 100) -> list[TaskRecord]:
        """The newest run of each task, newest first, optionally filtered."""
        clauses = ["seq IN (SELECT MAX(seq) FROM runs GROUP BY task_id)"]
        params: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if project_id is not None:
            clauses.append("project_id = ?")
            params.append(project_id)
        params.append(limit)
        rows = self._query(f"SELECT * FROM runs WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?", params)
        return [_row_record(row) for row in rows]

    def count_by_status(self) -> dict[tuple[str, str], int]:
        """How many runs (all of them, not only the newest of each task) are in each (status, executor)."""
        rows = self._query("SELECT status, executor, COUNT(*) AS n FROM runs GROUP BY status, executor")
        return {(row["status"], row["executor"]): row["n"] for row in rows}

    def active(self) -> list[TaskRecord]:
        """Runs not yet terminal, oldest first (submission order)."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._query(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY seq", sorted(ACTIVE_STATUSES))
        return [_row_record(row) for row in rows]
