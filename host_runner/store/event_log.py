"""The event log: every state change of every run, and agents' frames, in one global order.

Clients that would rather hold a connection than receive callbacks read it through the event stream
(``GET /events``, api/event_stream.py): each event has a global, increasing ``id``, so a client that reconnects
with the last id it saw gets everything after it, from here, with no gap and no duplicate, across restarts.

Events are written by :class:`host_runner.store.sqlite.Store` in the same transaction as the transition they
report (so an event is never seen before its state, nor lost after it), whether or not the task has a callback
URL; their body is what a callback of that transition carries (the contract's fields; never a token or
secret). Retention removes a run's events with the run: :meth:`EventLog.floor` then says up to which id events
may be missing, so a client resuming from before it is told (``event: reset``) instead of silently missing some.

SQLite serializes writers and ``AUTOINCREMENT`` never reuses an id, so ids appear in commit order: a reader that
has seen id N never later finds a new event with an id below N.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from host_runner.domain.errors import ShuttingDown
from host_runner.domain.record import TaskRecord, utc_now

__all__ = ["EVENT_KINDS", "EventFilter", "EventLog", "SCHEMA", "StreamEvent"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    project_id  TEXT,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_task ON events (task_id, id);
CREATE INDEX IF NOT EXISTS events_by_run ON events (task_id, run_id);
-- One row: events with an id up to it may have been removed by retention.
CREATE TABLE IF NOT EXISTS events_floor (id INTEGER NOT NULL);
"""

#: ``status``: a run's state changed (the body is its status callback's); ``output``: an agent's result frame
#: (the body is its ``output`` callback's); ``progress``: an agent CLI's messages, commands and file changes
#: (``{"status": "progress", "progress": [items]}``). Everything but ``status`` is progress (``?include=progress``).
EVENT_KINDS = ("status", "output", "progress")


@dataclass(frozen=True)
class StreamEvent:
    """One event as a client gets it: ``data`` is the JSON text of its body."""

    id: int
    kind: str
    task_id: str
    run_id: str
    status: str
    created_at: str
    data: str

    def to_public(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.kind, "task_id": self.task_id, "run_id": self.run_id,
                "created_at": self.created_at, "data": json.loads(self.data)}


@dataclass(frozen=True)
class EventFilter:
    """Which events a client wants: all of one task, of one project, with one status; progress or not."""

    task_id: str | None = None
    project_id: str | None = None
    status: str | None = None
    include_progress: bool = False


def _project_id(record: TaskRecord) -> str | None:
    project = record.workspace.project_id if record.workspace else None
    return None if project is None else str(project)


class EventLog:
    """Appends (inside the store's transactions) and reads events; wakes waiting readers after each commit.

    Shares the store's connection and lock (:class:`host_runner.store.sqlite.Store` makes it); thread-safe.
    """

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock
        self._changed = threading.Condition()
        self._closed = False
        self._latest = self._read_latest()

    # --- writing (inside the store's transaction, under its lock) -------------------------------------------------
    def append(self, record: TaskRecord, bodies: Sequence[Mapping[str, Any]]) -> int:
        """Add one event per body: kind ``output`` or ``progress`` when its status says so, ``status`` otherwise. Returns the last
        one's id (0 for none), for :meth:`committed`."""
        now = utc_now()
        project = _project_id(record)
        last = 0
        for fields in bodies:
            kind = fields["status"] if fields.get("status") in ("output", "progress") else "status"
            body = dict(fields, task_id=record.task_id, run_id=record.run_id)
            last = self._db.execute(
                "INSERT INTO events (task_id, run_id, project_id, kind, status, created_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.task_id, record.run_id, project, kind, record.status, now,
                 json.dumps(body, separators=(",", ":"), ensure_ascii=True)),
            ).lastrowid or last
        return last

    def forget(self, runs: Sequence[tuple[str, str]]) -> None:
        """Remove the events of deleted runs, raising the floor to the highest id removed."""
        for task_id, run_id in runs:
            (highest,) = self._db.execute("SELECT MAX(id) FROM events WHERE task_id = ? AND run_id = ?",
                                          (task_id, run_id)).fetchone()
            if highest is None:
                continue
            self._db.execute("DELETE FROM events WHERE task_id = ? AND run_id = ?", (task_id, run_id))
            if self._db.execute("UPDATE events_floor SET id = MAX(id, ?)", (highest,)).rowcount == 0:
                self._db.execute("INSERT INTO events_floor (id) VALUES (?)", (highest,))

    def committed(self, latest: int) -> None:
        """After the commit that added events up to id ``latest``: wake the readers waiting for them (called
        without the store's lock)."""
        if latest <= 0:
            return
        with self._changed:
            if latest > self._latest:
                self._latest = latest
                self._changed.notify_all()

    # --- reading -----------------------------------------------------------------------------------------------
    @property
    def latest(self) -> int:
        """The newest event's id as of the last commit (0: none yet)."""
        return self._latest

    def floor(self) -> int:
        """Events with an id up to this may be gone (retention); 0 when none was ever removed."""
        with self._lock:
            self._refuse_if_closed()
            row = self._db.execute("SELECT id FROM events_floor").fetchone()
        return int(row[0]) if row else 0

    def after(self, after: int, wanted: EventFilter, limit: int) -> list[StreamEvent]:
        """Up to ``limit`` events with an id above ``after`` that ``wanted`` selects, oldest first."""
        where, params = ["id > ?"], [after]
        if wanted.task_id is not None:
            where.append("task_id = ?")
            params.append(wanted.task_id)
        if wanted.project_id is not None:
            where.append("project_id = ?")
            params.append(wanted.project_id)
        if wanted.status is not None:
            where.append("kind = 'status' AND status = ?")
            params.append(wanted.status)
        elif not wanted.include_progress:
            where.append("kind = 'status'")
        with self._lock:
            self._refuse_if_closed()
            rows = self._db.execute(
                "SELECT id, kind, task_id, run_id, status, created_at, body FROM events "
                f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*params, limit),
            ).fetchall()
        return [StreamEvent(*row) for row in rows]

    def wait(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an event with an id above ``after`` (or the log's closing); True if
        there is one."""
        with self._changed:
            return self._changed.wait_for(lambda: self._latest > after or self._closed, timeout) and not self._closed

    def close(self) -> None:
        """The runner is stopping: readers are refused from now on (:class:`ShuttingDown`), waiting ones woken.
        Writers go on (the last transitions are still recorded, for clients that resume after the restart)."""
        with self._lock:
            self._closed = True
        with self._changed:
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ShuttingDown("the runner is shutting down")

    def _read_latest(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0
