"""What the ``host-runner`` command prints for people: key/value lists and tables of the API's records (``--json``
prints the API's JSON instead, through :func:`emit_json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from host_runner.domain.names import AGENT_SESSION_EXECUTORS  # names only: nothing heavy

__all__ = ["emit_json", "show_actors", "show_record", "show_tasks"]


def short_time(value: str | None) -> str:
    """``2026-11-23T09:00:01.123456Z`` → ``2026-11-23 09:00:01``."""
    return value[:19].replace("T", " ") if value else "-"


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value).replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    """Left-aligned columns; the last column is not padded (it may be long)."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[index]) for row in cells]) for index, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        padded = [text.ljust(widths[index]) for index, text in enumerate(row[:-1])] + [row[-1]]
        out.write("  ".join(padded).rstrip() + "\n")


def tail_lines(text: str, count: int = 5) -> str:
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-count:])


def show_record(record: dict[str, Any], out: TextIO) -> None:
    fields = [
        ("task", record["task_id"]), ("run", record["run_id"]), ("status", record["status"]),
        ("message", record.get("message")), ("exit code", record.get("exit_code")),
        ("executor", record.get("executor")), ("mode", record.get("execution_mode")), ("pid", record.get("pid")),
        ("container", record.get("container_id")), ("created", short_time(record.get("created_at"))),
        ("started", short_time(record.get("started_at"))), ("finished", short_time(record.get("finished_at"))),
        ("timeout", f"{record.get('timeout_seconds'):g} s" if record.get("timeout_seconds") else None),
        ("logs", (record.get("logs") or {}).get("dir")),
    ]
    if record.get("executor") in AGENT_SESSION_EXECUTORS:
        fields += [("group", record.get("group")), ("frames", record.get("frames")),
                   ("session", record.get("new_session_id") or record.get("session_id"))]
    if record.get("queue_position"):
        fields.append(("queued at", record["queue_position"]))
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        out.write(f"{name.ljust(width)}  {cell(value)}\n")
    for event in record.get("callbacks") or []:
        attempts = f"{event['attempts']} attempt{'' if event['attempts'] == 1 else 's'}"
        error = f", last error: {event['last_error']}" if event.get("last_error") else ""
        out.write(f"{'callback'.ljust(width)}  #{event['sequence']} {event['status']}: {event['state']} "
                  f"({attempts}{error})\n")
    answers = [output.get("result") for output in record.get("outputs") or [] if output.get("result") is not None]
    if answers:
        out.write(f"--- last result ---\n{tail_lines(str(answers[-1]))}\n")
    for stream in ("stdout", "stderr"):
        if record.get(stream):
            out.write(f"--- {stream} (last lines) ---\n{tail_lines(record[stream])}\n")


def show_tasks(records: list[dict[str, Any]], out: TextIO) -> None:
    table(("TASK", "RUN", "STATUS", "EXIT", "EXECUTOR", "CREATED", "MESSAGE"),
          [(r["task_id"], r["run_id"], r["status"], r.get("exit_code"), r.get("executor"),
            short_time(r.get("created_at")), r.get("message")) for r in records], out)


def _owns(entry: dict[str, Any]) -> str:
    state = entry.get("state") or {}
    if entry["class"] == "TaskActor" and state:
        owner = f"task {state.get('task_id')}/{state.get('run_id')} {state.get('status')}"
        if state.get("phase") != state.get("status"):
            owner += f" (phase {state.get('phase')})"
        if state.get("pid"):
            owner += f" pid {state['pid']}"
        if state.get("container_id"):
            owner += f" container {str(state['container_id'])[:12]}"
        return owner
    if entry["class"] == "SupervisorActor" and state:
        return f"{state.get('running')}/{state.get('max_concurrency')} running, {state.get('queued')} queued"
    if entry["class"] == "WorktreeRegistryActor" and state:
        return f"reservations: {len(state.get('reservations', []))}"
    if entry["class"] == "CallbackActor" and state:
        return f"callbacks pending: {sum(lane['pending'] for lane in state.get('lanes', []))}"
    return entry.get("problem") or ""


def show_actors(report: dict[str, Any], out: TextIO) -> None:
    out.write(f"{report['count']} actors (asked with a {report['timeout_seconds']:g} s deadline)\n")
    table(("CLASS", "URN", "INBOX", "AGE", "OWNS"),
          [(a["class"], a["urn"].rsplit(":", 1)[-1][:8], a["inbox_depth"],
            f"{a['state']['age_seconds']:.0f}s" if a["answered"] and "age_seconds" in a["state"] else "?",
            _owns(a)) for a in report["actors"]], out)
    if report["not_answering"]:
        out.write("\nnot answering:\n")
        table(("CLASS", "URN", "PROBLEM"), [(a["class"], a["urn"], a["problem"]) for a in report["not_answering"]],
              out)
    supervisor = report.get("supervisor")
    if supervisor is not None and supervisor["queue"]:
        out.write("\nqueue (admission order):\n")
        table(("#", "TASK", "RUN"), [(i + 1, q["task_id"], q["run_id"]) for i, q in enumerate(supervisor["queue"])],
              out)
    if report.get("reservations"):
        out.write("\nreservations:\n")
        table(("TASK", "RUN", "WHAT", "KEY"),
              [(r["task_id"], r["run_id"], r["label"], r["key"]) for r in report["reservations"]], out)
    if report.get("callback_lanes"):
        out.write("\ncallback lanes:\n")
        table(("TASK", "RUN", "PENDING", "NEXT", "ATTEMPTS", "LAST ERROR", "URL"),
              [(c["task_id"], c["run_id"], c["pending"], c["next_status"], c["attempts"], c["last_error"], c["url"])
               for c in report["callback_lanes"]], out)


def emit_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2, sort_keys=False)
    out.write("\n")
