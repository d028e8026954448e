"""The SQLite store (stdlib ``sqlite3``, WAL): every run of every task, the request that started it, and the
callback outbox.

Actors write through one :class:`Store` shared by the process; a lock serialises use of its single
connection, which is cheap because every statement is small. Readers see committed state only, so a
transition written here is never reported before it is durable. A transition that a receiver must hear of
writes its callback event in the same transaction (:meth:`Store.update` with ``callback_url``): the change
and the promise to report it are committed together or not at all.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_runner.domain.errors import StoreUnavailable
from host_runner.domain.record import ACTIVE_STATUSES, TaskRecord, utc_now
from host_runner.domain.request import TaskRequest
from host_runner.store.event_log import SCHEMA as EVENT_LOG_SCHEMA
from host_runner.store.event_log import EventLog
from host_runner.store.outbox import PENDING, encode_body, record_fields
from host_runner.store.rows import BRIEF_COLUMNS, json_request, record_row, request_json, row_record

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

-- The callback outbox: one row per event to report, written with the transition it reports.
CREATE TABLE IF NOT EXISTS callback_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    task_id      TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    url          TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (task_id, run_id, sequence)
);
CREATE INDEX IF NOT EXISTS callback_events_by_state ON callback_events (state, id);
"""

@dataclass(frozen=True)
class OutboxEvent:
    """An outbox row without its body (bodies are loaded only to be sent, so pending events cost little memory)."""

    event_id: str
    task_id: str
    run_id: str
    sequence: int
    status: str
    url: str
    state: str
    attempts: int
    last_error: str | None = None

    @property
    def run(self) -> tuple[str, str]:
        return (self.task_id, self.run_id)


_EVENT_COLUMNS = "event_id, task_id, run_id, sequence, status, url, state, attempts, last_error"


def _row_event(row: sqlite3.Row) -> OutboxEvent:
    return OutboxEvent(**{name: row[name] for name in _EVENT_COLUMNS.split(", ")})


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A write that SQLite refuses for want of space or a failing disk becomes :class:`StoreUnavailable` (the
    caller keeps what it meant to write and tries again later; the API answers 507)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "full" in text or "disk I/O" in text or "unable to open" in text or "readonly" in text:
            raise StoreUnavailable(f"the runner's store cannot be written: {text}") from exc
        raise


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
        self._db.executescript(SCHEMA + EVENT_LOG_SCHEMA)
        path.chmod(0o600)  # the store holds callback tokens
        self.events = EventLog(self._db, self._lock)  # written in the transactions below

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, record: TaskRecord, request: TaskRequest) -> None:
        """Store a new run; raises ``sqlite3.IntegrityError`` if (task_id, run_id) exists."""
        row = record_row(record)
        row["request"] = request_json(request)
        row["callback_token"] = request.status_callback_token
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        with self._lock, _writing(), self._db:  # `with connection`: BEGIN … COMMIT, ROLLBACK on error
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row)
            latest = self.events.append(record, [record_fields(record)])
        self.events.committed(latest)

    def update(
        self, record: TaskRecord, *, callback_url: str | None = None,
        callback_fields: Mapping[str, Any] | None = None,
    ) -> OutboxEvent | None:
        """Write the current state of a run (a transition).

        With ``callback_url``, also add a pending callback event for it to the outbox, in the same transaction:
        its body is ``callback_fields`` (default: the record's contract fields) plus ``task_id``, ``run_id``, a
        new unique ``event_id`` and the run's next ``sequence`` (1, 2, …). Returns that event, else None.
        """
        fields = record_fields(record) if callback_fields is None else callback_fields
        events = self._update(record, callback_url, [fields])
        return events[0] if events else None

    def update_with_events(
        self, record: TaskRecord, callback_url: str | None, events: Sequence[Mapping[str, Any]], *,
        progress: Sequence[Mapping[str, Any]] = (), progress_url: str | None = None,
    ) -> list[OutboxEvent]:
        """Like :meth:`update`, with one outbox event per item of ``events`` (each its body's fields), in order,
        all in the same transaction (the agent executor's output frames). No URL: no callback events.
        ``progress``: progress events, in the event log, and in the outbox only with ``progress_url``."""
        return self._update(record, callback_url, list(events), list(progress), progress_url)

    def _update(
        self, record: TaskRecord, callback_url: str | None, events: list[Mapping[str, Any]],
        progress: list[Mapping[str, Any]] | None = None, progress_url: str | None = None,
    ) -> list[OutboxEvent]:
        row = record_row(record)
        assignments = ", ".join(f"{name} = :{name}" for name in row if name not in ("task_id", "run_id"))
        with self._lock, _writing():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    f"UPDATE runs SET {assignments} WHERE task_id = :task_id AND run_id = :run_id", row
                )
                if cursor.rowcount != 1:
                    raise KeyError(f"no run {record.task_id}/{record.run_id} to update")
                added = [self._add_event(record, callback_url, fields) for fields in events if callback_url]
                added += [self._add_event(record, progress_url, fields) for fields in progress or () if progress_url]
                # the event stream's, with or without a URL
                latest = self.events.append(record, [*events, *(progress or ())])
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls back by itself after some errors (SQLITE_FULL)
                    self._db.execute("ROLLBACK")
                raise
        self.events.committed(latest)
        return added

    def _add_event(self, record: TaskRecord, url: str, fields: Mapping[str, Any]) -> OutboxEvent:
        """Inside :meth:`update`'s transaction: append the run's next callback event."""
        (last,) = self._db.execute(
            "SELECT COALESCE(MAX(sequence), 0) FROM callback_events WHERE task_id = ? AND run_id = ?",
            (record.task_id, record.run_id),
        ).fetchone()
        event_id = str(uuid.uuid4())
        sequence = last + 1
        body = encode_body(fields, task_id=record.task_id, run_id=record.run_id, event_id=event_id,
                           sequence=sequence)
        status = str(fields.get("status") or record.status)
        now = utc_now()
        self._db.execute(
            "INSERT INTO callback_events (event_id, task_id, run_id, sequence, status, url, body, state, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, record.task_id, record.run_id, sequence, status, url, body, PENDING, now, now),
        )
        return OutboxEvent(event_id, record.task_id, record.run_id, sequence, status, url, PENDING, 0)

    # --- the callback outbox -----------------------------------------------------------------------------------
    def pending_callbacks(self) -> list[OutboxEvent]:
        """Every event not yet delivered or given up, oldest first (so each run's are in sequence order)."""
        rows = self._query(f"SELECT {_EVENT_COLUMNS} FROM callback_events WHERE state = ? ORDER BY id", (PENDING,))
        return [_row_event(row) for row in rows]

    def callback_event(self, event_id: str) -> OutboxEvent | None:
        rows = self._query(f"SELECT {_EVENT_COLUMNS} FROM callback_events WHERE event_id = ?", (event_id,))
        return _row_event(rows[0]) if rows else None

    def callback_delivery(self, event_id: str) -> tuple[str, str | None, str] | None:
        """``(url, token, body)`` of an event: what an attempt sends. The token lives with the run only."""
        rows = self._query(
            "SELECT e.url, r.callback_token, e.body FROM callback_events e "
            "LEFT JOIN runs r ON r.task_id = e.task_id AND r.run_id = e.run_id WHERE e.event_id = ?",
            (event_id,),
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def record_callback_attempt(self, event_id: str, *, state: str, attempts: int, last_error: str | None) -> None:
        """Persist an event's delivery state after an attempt. A settled event's body is dropped: it is never
        sent again, and it holds up to 128 KiB of output tails that the run's record keeps anyway."""
        now = utc_now()
        with self._lock, _writing():
            self._db.execute(
                "UPDATE callback_events SET state = :state, attempts = :attempts, "
                "last_error = COALESCE(:error, last_error), updated_at = :now, "
                "delivered_at = CASE WHEN :state = 'delivered' THEN :now ELSE delivered_at END, "
                "body = CASE WHEN :state = 'pending' THEN body ELSE '' END WHERE event_id = :event_id",
                {"state": state, "attempts": attempts, "error": last_error, "now": now, "event_id": event_id},
            )

    def callbacks_for(self, task_id: str, run_id: str) -> list[dict[str, Any]]:
        """The delivery state of a run's events, in sequence order, as shown on ``GET /tasks/{id}``.

        Neither the URL (it may carry credentials) nor the token is included.
        """
        rows = self._query(
            "SELECT event_id, sequence, status, state, attempts, last_error, created_at, updated_at, delivered_at "
            "FROM callback_events WHERE task_id = ? AND run_id = ? ORDER BY sequence",
            (task_id, run_id),
        )
        return [dict(row) for row in rows]

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def get(self, task_id: str, run_id: str | None = None) -> TaskRecord | None:
        """One run, or the newest run of the task when ``run_id`` is None."""
        if run_id is None:
            rows = self._query("SELECT * FROM runs WHERE task_id = ? ORDER BY seq DESC LIMIT 1", (task_id,))
        else:
            rows = self._query("SELECT * FROM runs WHERE task_id = ? AND run_id = ?", (task_id, run_id))
        return row_record(rows[0]) if rows else None

    def run_and_latest(self, task_id: str, run_id: str) -> tuple[TaskRecord | None, TaskRecord | None]:
        """The run ``run_id`` of the task and the task's newest run (either None), in one query (each submit asks)."""
        rows = self._query(
            "SELECT * FROM runs WHERE task_id = ? AND (run_id = ? OR seq = (SELECT MAX(seq) FROM runs WHERE task_id = ?)) "
            "ORDER BY seq DESC", (task_id, run_id, task_id))
        records = [row_record(row) for row in rows]
        run = next((record for record in records if record.run_id == run_id), None)
        return run, (records[0] if records else None)

    def get_request(self, task_id: str, run_id: str) -> TaskRequest | None:
        rows = self._query(
            "SELECT request, callback_token FROM runs WHERE task_id = ? AND run_id = ?", (task_id, run_id)
        )
        return json_request(rows[0]["request"], rows[0]["callback_token"]) if rows else None

    def list(self, *, status: str | None = None, project_id: str | None = None, limit: int = 100,
             brief: bool = False) -> list[TaskRecord]:
        """The newest run of each task, newest first, optionally filtered. ``brief`` leaves the bulky parts out
        in SQLite already (the output tails come back empty, agent ``outputs`` removed): a dashboard polling 1,000
        tasks a second must not read up to 64 KiB x 2 + 256 KiB per task each time."""
        columns = BRIEF_COLUMNS if brief else "*"
        clauses = ["seq IN (SELECT MAX(seq) FROM runs GROUP BY task_id)"]
        params: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if project_id is not None:
            clauses.append("project_id = ?")
            params.append(project_id)
        params.append(limit)
        rows = self._query(f"SELECT {columns} FROM runs WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
                           params)
        return [row_record(row) for row in rows]

    def count_by_status(self) -> dict[tuple[str, str], int]:
        """How many runs (all of them, not only the newest of each task) are in each (status, executor)."""
        rows = self._query("SELECT status, executor, COUNT(*) AS n FROM runs GROUP BY status, executor")
        return {(row["status"], row["executor"]): row["n"] for row in rows}

    def has_runs(self, execution_mode: str) -> bool:
        """True if any run (active or not) of ``execution_mode`` was ever stored."""
        return bool(self._query("SELECT 1 FROM runs WHERE execution_mode = ? LIMIT 1", (execution_mode,)))

    # --- retention (host_runner.store.retention decides what, actors.retention when) ---------------------
    def prunable_runs(self, ended_before: str, keep_newest: int, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` finished runs, the earliest ended first, that ended before ``ended_before`` or are
        beyond the ``keep_newest`` last ended (by end, so a long run that just ended is among the newest), and
        have no pending callback event."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._query(
            "SELECT task_id, run_id FROM (SELECT seq, task_id, run_id, COALESCE(finished_at, updated_at) AS ended, "
            f"ROW_NUMBER() OVER (ORDER BY COALESCE(finished_at, updated_at) DESC, seq DESC) AS newer FROM runs "
            f"WHERE status NOT IN ({marks})) AS f "
            "WHERE (ended < ? OR newer > ?) AND NOT EXISTS (SELECT 1 FROM callback_events e WHERE e.state = ? "
            "AND e.task_id = f.task_id AND e.run_id = f.run_id) ORDER BY ended, seq LIMIT ?",
            (*sorted(ACTIVE_STATUSES), ended_before, keep_newest, PENDING, limit),
        )
        return [(row[0], row[1]) for row in rows]

    def delete_runs(self, runs: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
        """Delete finished runs and their settled callback events in one transaction; a run that became active
        or has a pending event again is kept. Returns the runs deleted and how many events went with them."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        deleted, events = [], 0
        with self._lock, _writing(), self._db:  # `with connection`: BEGIN … COMMIT, ROLLBACK on error
            self._db.execute("BEGIN IMMEDIATE")
            for task_id, run_id in runs:
                cursor = self._db.execute(
                    f"DELETE FROM runs WHERE task_id = ? AND run_id = ? AND status NOT IN ({marks}) AND NOT EXISTS "
                    "(SELECT 1 FROM callback_events WHERE task_id = ? AND run_id = ? AND state = ?)",
                    (task_id, run_id, *sorted(ACTIVE_STATUSES), task_id, run_id, PENDING),
                )
                if cursor.rowcount == 1:
                    deleted.append((task_id, run_id))
                    events += self._db.execute("DELETE FROM callback_events WHERE task_id = ? AND run_id = ?",
                                               (task_id, run_id)).rowcount
            self.events.forget(deleted)
        return deleted, events

    def active(self) -> list[TaskRecord]:
        """Runs not yet terminal, oldest first (submission order)."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._query(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY seq", sorted(ACTIVE_STATUSES))
        return [row_record(row) for row in rows]
