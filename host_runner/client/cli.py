"""``host-runner`` / ``python -m host_runner``: serve the API, or talk to a running one.

Client commands read HOST_RUNNER_URL (default http://127.0.0.1:8765) and HOST_RUNNER_API_TOKEN, or the file
HOST_RUNNER_API_TOKEN_FILE names, like the runner (never a flag: arguments are visible to every user in ``ps``). Output is a table or key/value list for people, or the API's
JSON with ``--json``. Exit codes: 0 done, 1 the runner answered an error or could not be reached, 2 bad usage;
``submit --wait`` exits with the task's own exit code, or 1 when a run that did not succeed has none (it never
started, or was lost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import requests

from host_runner.client.api_client import ApiError, Client
from host_runner.domain.names import AGENT_SESSION_EXECUTORS, EXECUTION_MODES, EXECUTORS  # names only: nothing heavy

REPO = Path(__file__).resolve().parents[2]


# --- rendering ---------------------------------------------------------------------------------------------------
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


# --- commands ----------------------------------------------------------------------------------------------------
def submission(args: argparse.Namespace) -> dict[str, Any]:
    """The submit body: the JSON file (if any), then the flags on top."""
    body: dict[str, Any] = {}
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise SystemExit("host-runner: the submission file must hold a JSON object")
        body.update(loaded)
    if args.prompt_file:
        body["prompt"] = sys.stdin.read() if args.prompt_file == "-" else Path(args.prompt_file).read_text()
    for name, value in (("prompt", args.prompt), ("task_id", args.task_id), ("run_id", args.run_id),
                        ("execution_mode", args.mode), ("timeout_seconds", args.timeout_seconds),
                        ("status_callback_url", args.callback_url), ("executor", args.executor),
                        ("group", args.group), ("session_id", args.session_id)):
        if value is not None:
            body[name] = value
    workspace = dict(body.get("workspace") or {})
    if args.project_root:
        workspace["project_root"] = str(Path(args.project_root).absolute())
    if args.project_id:
        workspace["project_id"] = args.project_id
    if args.lock_path:
        workspace["lock_paths"] = [str(Path(path).absolute()) for path in args.lock_path]
    if workspace:
        body["workspace"] = workspace
    body.setdefault("task_id", f"cli-{uuid.uuid4().hex[:8]}")
    body.setdefault("run_id", f"r-{uuid.uuid4().hex[:8]}")
    if "prompt" not in body:
        raise SystemExit("host-runner: a prompt is needed (--prompt, --prompt-file or a JSON file with one)")
    return body


def progress(err: TextIO) -> Any:
    def show(record: dict[str, Any]) -> None:
        pid = f" (pid {record['pid']})" if record.get("pid") and record["status"] == "running" else ""
        message = record.get("message")
        detail = f": {message}" if message and message not in (record["status"], "queued", "running") else ""
        err.write(f"{record['task_id']} {record['run_id']}: {record['status']}{pid}{detail}\n")
        err.flush()

    return show


def cmd_submit(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    body = submission(args)
    submitted = client.submit(body)
    record = submitted.record
    if not submitted.created:
        err.write(f"{record['task_id']} {record['run_id']} was already submitted; nothing new started\n")
    if not args.wait:
        emit_json(record, out) if args.json else show_record(record, out)
        return 0
    record = client.wait(record["task_id"], interval=args.interval, on_change=progress(err))
    emit_json(record, out) if args.json else show_record(record, out)
    if record["status"] == "success":
        return 0
    code = record.get("exit_code")
    return code if isinstance(code, int) and 0 < code < 256 else 1


def cmd_status(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    record = client.get(args.task_id)
    emit_json(record, out) if args.json else show_record(record, out)
    return 0


def cmd_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    records = client.list(status=args.status, project_id=args.project_id, limit=args.limit)
    emit_json({"tasks": records, "count": len(records)}, out) if args.json else show_tasks(records, out)
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    record = client.cancel(args.task_id)
    emit_json(record, out) if args.json else show_record(record, out)
    return 0


def cmd_message(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    answer = client.send_message(args.task_id, args.text)
    emit_json(answer, out) if args.json else out.write(f"{answer['message_id']}\n")
    return 0


def cmd_close(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    answer = client.close(args.task_id)
    emit_json(answer, out) if args.json else out.write(f"{answer['task_id']} {answer['run_id']}: closing\n")
    return 0


def cmd_logs(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sink = getattr(out, "buffer", None)

    def write(data: bytes) -> None:
        if sink is not None:
            sink.write(data)
            sink.flush()
        else:
            out.write(data.decode("utf-8", errors="replace"))
            out.flush()

    if args.follow:
        for chunk in client.follow(args.task_id, stream=args.stream, offset=args.offset, run_id=args.run_id):
            write(chunk)
        return 0
    offset = args.offset
    while True:  # page through the whole file
        chunk = client.logs(args.task_id, stream=args.stream, offset=offset, run_id=args.run_id)
        if not chunk.data:
            return 0
        write(chunk.data)
        offset = chunk.next_offset


def cmd_actors(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = client.debug_actors(timeout=args.timeout)
    emit_json(report, out) if args.json else show_actors(report, out)
    return 0


def cmd_threads(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.json:
        emit_json(client.debug_threads(), out)
    else:
        out.write(client.debug_threads_text())
    return 0


def cmd_metrics(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out.write(client.metrics())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn on the repository's gunicorn.conf.py (as ``make run`` does)."""
    config_file = REPO / "gunicorn.conf.py"
    if not config_file.exists():
        print(f"host-runner: serve needs the source checkout ({config_file} is missing)", file=sys.stderr)
        return 1
    env = dict(os.environ)
    if args.bind:
        env["HOST_RUNNER_BIND"] = args.bind
    # gunicorn runs from the checkout; keep a relative data directory relative to where we were started.
    env["HOST_RUNNER_DATA_DIR"] = str(Path(env.get("HOST_RUNNER_DATA_DIR") or ".host-runner").absolute())
    if env.get("HOST_RUNNER_API_TOKEN_FILE"):
        env["HOST_RUNNER_API_TOKEN_FILE"] = str(Path(env["HOST_RUNNER_API_TOKEN_FILE"]).absolute())
    os.chdir(REPO)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(config_file), "api.app:create_app()"]
    os.execve(sys.executable, argv, env)
    return 0  # not reached


# --- parsing -----------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="host-runner",
                                  description="Serve the host-runner API, or talk to a running one.")
    top.add_argument("--url", help="the runner (default: $HOST_RUNNER_URL or http://127.0.0.1:8765)")
    top.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the service (gunicorn with gunicorn.conf.py)")
    serve.add_argument("--bind", help="HOST:PORT (default: $HOST_RUNNER_BIND or 127.0.0.1:8765)")

    submit = commands.add_parser("submit", help="submit a task (from flags and/or a JSON file)")
    submit.add_argument("--file", "-f", help="a JSON submission body ('-' for stdin); flags override its fields")
    submit.add_argument("--prompt", "-p")
    submit.add_argument("--prompt-file", help="read the prompt from a file ('-' for stdin)")
    submit.add_argument("--task-id", help="default: cli-<random>")
    submit.add_argument("--run-id", help="default: r-<random>")
    submit.add_argument("--mode", choices=EXECUTION_MODES, help="execution_mode")
    submit.add_argument("--project-root")
    submit.add_argument("--project-id")
    submit.add_argument("--lock-path", action="append", help="repeat for several paths")
    submit.add_argument("--timeout-seconds", type=float)
    submit.add_argument("--callback-url")
    submit.add_argument("--executor", choices=EXECUTORS, help="default: the runner's HOST_RUNNER_EXECUTOR")
    submit.add_argument("--group", help="agent tasks: the group (default: --project-id)")
    submit.add_argument("--session-id", help="agent tasks: the session to resume")
    submit.add_argument("--wait", "-w", action="store_true", help="show progress; exit with the task's exit code")
    submit.add_argument("--interval", type=float, default=0.5, help="seconds between status polls with --wait")

    status = commands.add_parser("status", help="a task's newest run")
    status.add_argument("task_id")

    listing = commands.add_parser("list", help="tasks, newest first")
    listing.add_argument("--status", choices=("queued", "running", "success", "failed", "canceled"))
    listing.add_argument("--project-id")
    listing.add_argument("--limit", type=int)

    cancel = commands.add_parser("cancel", help="stop a task and show its final record")
    cancel.add_argument("task_id")

    message = commands.add_parser("message", help="agent tasks: send the running agent a follow-up message")
    message.add_argument("task_id")
    message.add_argument("text")

    close = commands.add_parser("close", help="agent tasks: ask the agent to finish and exit (_close)")
    close.add_argument("task_id")

    logs = commands.add_parser("logs", help="a run's output (raw bytes)")
    logs.add_argument("task_id")
    logs.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--offset", type=int, default=0, help="start at this byte")
    logs.add_argument("--run-id", help="another run than the newest")

    actors = commands.add_parser("actors", help="live actors, queue, reservations, callback lanes")
    actors.add_argument("--timeout", type=float, help="seconds to wait for busy actors (default 1)")

    commands.add_parser("threads", help="the stack of every thread in the runner")
    commands.add_parser("metrics", help="the Prometheus metrics")
    return top


HANDLERS = {
    "submit": cmd_submit, "status": cmd_status, "list": cmd_list, "cancel": cmd_cancel, "logs": cmd_logs,
    "message": cmd_message, "close": cmd_close,
    "actors": cmd_actors, "threads": cmd_threads, "metrics": cmd_metrics,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         client: Client | None = None) -> int:
    """Run one command; returns the exit code (``host-runner`` calls ``sys.exit`` with it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    try:
        client = client or Client(args.url)
    except ValueError as exc:  # the token settings (see host_runner.ops.api_token)
        err.write(f"host-runner: {exc}\n")
        return 1
    try:
        return HANDLERS[args.command](client, args, out, err)
    except ApiError as exc:
        err.write(f"host-runner: {exc}\n")
        return 1
    except requests.ConnectionError:
        err.write(f"host-runner: cannot reach the runner at {client.url}\n")
        return 1
    except BrokenPipeError:  # `host-runner logs x | head`
        return 0
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())
