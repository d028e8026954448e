"""The runner's own logging: plain text or one JSON object per line, with task_id/run_id on task lines.

Which task a line belongs to travels in a context variable rather than in every call: a TaskActor binds its
task and run once (its thread serves that run only) and helper threads it starts inherit the binding, so lines
logged deep inside the domain (launchers, workspaces) carry the ids too. Code outside a task's thread passes
``extra=task_fields(record)`` instead. Secrets and prompts are never put into a log line by this module; what
callers log is theirs to keep clean (see README, "Logs").
"""

from __future__ import annotations

import contextvars
import json
import logging
import traceback
import types
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

LOG_FORMATS = ("text", "json")

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "host_runner_log_context", default=types.MappingProxyType({})
)

#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is worth showing.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def bind_log_context(**fields: str) -> None:
    """Attach ``fields`` (e.g. task_id, run_id) to every line logged later in this thread's context."""
    _context.set({**_context.get(), **fields})


def log_context() -> Mapping[str, str]:
    """The fields bound in the current context."""
    return _context.get()


def task_fields(record: Any) -> dict[str, str]:
    """``extra=`` for a log line about a task, from anything with ``task_id`` and ``run_id`` (a record, a key)."""
    if isinstance(record, tuple):
        return {"task_id": record[0], "run_id": record[1]}
    return {"task_id": record.task_id, "run_id": record.run_id}


def redact_url(url: str) -> str:
    """``scheme://host:port/path`` of a URL, for logs and debug output: user info and the query may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (without overriding an explicit ``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, thread, message, then task_id/run_id and other extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with ``[task_id/run_id]`` after the logger name on task lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(task)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None)
        run_id = getattr(record, "run_id", None)
        record.task = f" [{task_id}/{run_id}]" if task_id else ""
        return super().format(record)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str = "text") -> None:
    """Route the root logger to stderr in ``log_format``; idempotent (a second call replaces our handler)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_host_runner", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._host_runner = True  # type: ignore[attr-defined]
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # pykka logs every exception an actor returns to its asker at INFO, with a traceback. Ours are answers, not
    # failures (Conflict → 409, ValidationError → 422, ShuttingDown → 503): the API renders them as JSON, and a
    # client's mistake must not put a traceback in the log. pykka's warnings and errors (a crashed actor) remain.
    logging.getLogger("pykka").setLevel(logging.DEBUG if root.getEffectiveLevel() <= logging.DEBUG else logging.WARNING)


def gunicorn_json_logger_class() -> type:
    """A gunicorn ``logger_class`` writing its error and access lines as JSON too (imported lazily: only the
    gunicorn config needs gunicorn)."""
    from gunicorn.glogging import Logger

    class GunicornJsonLogger(Logger):  # type: ignore[misc]
        def _set_handler(self, log: logging.Logger, output: Any, fmt: logging.Formatter, stream: Any = None) -> None:
            super()._set_handler(log, output, JsonFormatter(), stream)

    return GunicornJsonLogger
