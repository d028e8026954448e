"""``host-runner`` / ``python -m host_runner``: serve the API, or talk to a running one.

Client commands read HOST_RUNNER_URL (default http://127.0.0.1:8765) and HOST_RUNNER_API_TOKEN, or the file
HOST_RUNNER_API_TOKEN_FILE names, like the runner; ``--url`` and ``--token-file`` say the same on the command line
(a file, never the token itself: arguments are visible to every user in ``ps``), before or after the command.
Output is a table or key/value list for people, or the API's JSON with ``--json``. Exit codes: 0 done, 1 the runner answered an error or could not be reached, 2 bad usage;
``submit --wait`` exits with the task's own exit code, or 1 when a run that did not succeed has none (it never
started, or was lost).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import requests

from host_runner import __version__
from host_runner.client.api_client import ApiError, Client
from host_runner.client.events import StreamEvent
from host_runner.client.views import emit_json, show_actors, show_record, show_tasks
from host_runner.domain.names import EXECUTION_MODES, EXECUTORS  # names only: nothing heavy
from host_runner.ops.api_token import read_token_file

#: The directory that holds the packages host_runner, actors and api: site-packages when installed, the checkout's
#: root when run from it. ``serve`` starts the service found there, the one beside this command.
PACKAGES_ROOT = Path(__file__).resolve().parents[2]


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


def cmd_events(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The event log: one page, or (``--follow``) the stream, resumed by itself, until interrupted. One line per
    event: its id, kind, task and status, or (``--json``) the event as JSON."""
    filters = {"task_id": args.task_id, "project_id": args.project_id, "status": args.status,
               "include": "progress" if args.progress else None}
    if args.follow:
        events: Iterable[Any] = client.follow_events(after=args.after, **filters)
    else:
        page = client.events(after=args.after, limit=args.limit, **filters)
        if page["reset"]:
            err.write(f"host-runner: events up to {page['floor']} may have been removed by retention\n")
        events = (StreamEvent(e["id"], e["event"], e["data"]) for e in page["events"])
    for event in events:
        if args.json:
            out.write(json.dumps({"id": event.id, "event": event.event, "data": event.data}) + "\n")
        else:
            data = event.data if isinstance(event.data, dict) else {}
            out.write(f"{event.id or '-'}\t{event.event}\t{data.get('task_id', '')}\t{data.get('run_id', '')}\t"
                      f"{data.get('status', '')}\t{data.get('message', '') or ''}\n")
        out.flush()
    return 0


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


def serve_argv() -> list[str]:
    """The command that runs api.serve (gunicorn with the package's settings) with this interpreter.

    ``-P`` keeps the working directory off ``sys.path``: an ``api/`` package where the operator happens to stand
    must not be served instead of the runner's own. Only in the checkout's root is the working directory how the
    packages are found (``python -m host_runner serve`` there), and then it holds exactly them.
    """
    safe_path = [] if Path.cwd().resolve() == PACKAGES_ROOT else ["-P"]
    return [sys.executable, *safe_path, "-m", "api.serve"]


def cmd_serve(args: argparse.Namespace) -> int:
    """Replace this process with the service (as ``make run`` starts it), in the current working directory: a
    relative HOST_RUNNER_DATA_DIR (the default ``./.host-runner`` too) is relative to where it was started."""
    env = dict(os.environ)
    if args.bind:
        env["HOST_RUNNER_BIND"] = args.bind
    argv = serve_argv()
    os.execve(argv[0], argv, env)
    return 0  # not reached


# --- parsing -----------------------------------------------------------------------------------------------------
def client_options(*, after_command: bool) -> argparse.ArgumentParser:
    """The options of every client command, accepted before the command and after it. After it they default to
    "not given" (argparse.SUPPRESS), so that a subcommand's parser does not overwrite what was given before it."""
    options = argparse.ArgumentParser(add_help=False)
    unset = argparse.SUPPRESS if after_command else None
    options.add_argument("--url", default=unset, help="the runner (default: $HOST_RUNNER_URL or http://127.0.0.1:8765)")
    options.add_argument("--json", action="store_true", default=unset if after_command else False,
                         help="print the API's JSON instead of tables")
    options.add_argument("--token-file", default=unset,
                         help="read the API token from this file (as $HOST_RUNNER_API_TOKEN_FILE: owner-only)")
    return options


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="host-runner", parents=[client_options(after_command=False)],
                                  description="Serve the host-runner API, or talk to a running one.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client_command = functools.partial(commands.add_parser, parents=[client_options(after_command=True)])

    serve = commands.add_parser("serve", help="run the service (gunicorn with the package's settings)")
    serve.add_argument("--bind", help="HOST:PORT (default: $HOST_RUNNER_BIND or 127.0.0.1:8765)")

    submit = client_command("submit", help="submit a task (from flags and/or a JSON file)")
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

    status = client_command("status", help="a task's newest run")
    status.add_argument("task_id")

    listing = client_command("list", help="tasks, newest first")
    listing.add_argument("--status", choices=("queued", "running", "success", "failed", "canceled"))
    listing.add_argument("--project-id")
    listing.add_argument("--limit", type=int)

    cancel = client_command("cancel", help="stop a task and show its final record")
    cancel.add_argument("task_id")

    message = client_command("message", help="agent tasks: send the running agent a follow-up message")
    message.add_argument("task_id")
    message.add_argument("text")

    close = client_command("close", help="agent tasks: ask the agent to finish and exit (_close)")
    close.add_argument("task_id")

    logs = client_command("logs", help="a run's output (raw bytes)")
    logs.add_argument("task_id")
    logs.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--offset", type=int, default=0, help="start at this byte")
    logs.add_argument("--run-id", help="another run than the newest")

    events = client_command("events", help="status changes of every task (the event stream)")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events (resumes by itself)")
    events.add_argument("--after", type=int, default=0, help="events after this id (default: all kept)")
    events.add_argument("--task-id")
    events.add_argument("--project-id")
    events.add_argument("--status", choices=("queued", "running", "success", "failed", "canceled"))
    events.add_argument("--progress", action="store_true", help="agent frames and agent CLIs' progress too")
    events.add_argument("--limit", type=int, help="without --follow: at most this many (default 100)")

    actors = client_command("actors", help="live actors, queue, reservations, callback lanes")
    actors.add_argument("--timeout", type=float, help="seconds to wait for busy actors (default 1)")

    client_command("threads", help="the stack of every thread in the runner")
    client_command("metrics", help="the Prometheus metrics")
    return top


HANDLERS = {
    "submit": cmd_submit, "status": cmd_status, "list": cmd_list, "cancel": cmd_cancel, "logs": cmd_logs,
    "message": cmd_message, "close": cmd_close, "events": cmd_events,
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
        token = read_token_file(args.token_file) if args.token_file else None
    except ValueError as exc:
        err.write(f"host-runner: --token-file {args.token_file}: {exc}\n")
        return 1
    try:
        client = client or Client(args.url, token)
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
