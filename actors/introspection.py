"""Looking inside a live runner: what every actor owns (asked, with a deadline) and what every thread is doing.

:func:`describe_actors` sends :class:`Describe` to every live actor at once and then collects the answers
against one shared deadline, so a busy or hung actor costs the caller at most ``timeout`` seconds in total and
is reported as not answering instead of blocking the report. :func:`thread_stacks` is what
``pykka.debug.log_thread_tracebacks`` logs, as data: the current stack of every thread in the process, which
shows where a hung actor is stuck.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.messages import Describe


@dataclass(frozen=True)
class ActorReport:
    """One live actor: its class and urn, inbox depth when the report started, and its answer if it came."""

    actor_class: str
    urn: str
    inbox_depth: int | None
    answered: bool
    problem: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"class": self.actor_class, "urn": self.urn, "inbox_depth": self.inbox_depth,
                "answered": self.answered, "problem": self.problem, "state": self.state}


def _inbox_depth(ref: pykka.ActorRef[Any]) -> int | None:
    try:
        return ref.actor_inbox.qsize()
    except (AttributeError, NotImplementedError):  # qsize is not available on every platform/inbox
        return None


def describe_actors(timeout: float) -> list[ActorReport]:
    """Every live actor in this process, asked for :class:`Describe`; waits at most ``timeout`` s in total."""
    pending = []
    for ref in pykka.ActorRegistry.get_all():
        depth = _inbox_depth(ref)  # before our own message joins the queue
        try:
            future = ref.ask(Describe(), block=False)
        except pykka.ActorDeadError:
            continue  # stopped since we listed it
        pending.append((ref, depth, future))
    deadline = time.monotonic() + timeout
    reports = []
    for ref, depth, future in pending:
        name, urn = ref.actor_class.__name__, ref.actor_urn
        try:
            state = future.get(timeout=max(0.0, deadline - time.monotonic()))
        except pykka.Timeout:
            reports.append(ActorReport(name, urn, depth, False, f"did not answer within {timeout:g} s"))
        except pykka.ActorDeadError:
            reports.append(ActorReport(name, urn, depth, False, "stopped before it answered"))
        except Exception as exc:  # a describe() bug must not take the whole report down
            reports.append(ActorReport(name, urn, depth, False, f"failed to describe itself: {type(exc).__name__}"))
        else:
            reports.append(ActorReport(name, urn, depth, True, None, state if isinstance(state, dict) else {}))
    return reports


def thread_stacks() -> list[dict[str, Any]]:
    """The current stack of every thread, innermost frame last, sorted by thread name."""
    threads = {thread.ident: thread for thread in threading.enumerate()}
    found = []
    for ident, frame in sys._current_frames().items():  # noqa: SLF001 (what pykka.debug uses too)
        thread = threads.get(ident)
        found.append({
            "name": thread.name if thread else "?",
            "ident": ident,
            "daemon": thread.daemon if thread else None,
            "stack": [
                {"file": entry.filename, "line": entry.lineno, "function": entry.name, "code": entry.line or ""}
                for entry in traceback.extract_stack(frame)
            ],
        })
    return sorted(found, key=lambda item: (item["name"], item["ident"]))


def format_thread_stacks(stacks: list[dict[str, Any]]) -> str:
    """The stacks as text, in the layout of ``pykka.debug.log_thread_tracebacks``."""
    parts = []
    for thread in stacks:
        lines = [f"Current state of {thread['name']} (ident: {thread['ident']}):"]
        for entry in thread["stack"]:
            lines.append(f'  File "{entry["file"]}", line {entry["line"]}, in {entry["function"]}')
            if entry["code"]:
                lines.append(f"    {entry['code']}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
