"""What an agent CLI did in one run, whichever CLI it was: the :class:`Transcript` its event parser fills.

An agent CLI with a machine-readable mode (``codex exec --json``; Claude Code's ``stream-json``) prints one JSON
event per line. Each CLI has its own event parser (a module next to this one) that turns its events into calls
on a Transcript; the Transcript holds what the record shows (``session_id``, ``final_message``, ``usage``,
``files_changed``, ``commands``, ``events``), the readable transcript lines that replace the raw JSON as the
run's ``stdout``, the ``handoff`` for the orchestrator, and why the CLI failed, if it said so. Everything it
keeps is bounded: the newest commands within a budget, a capped list of changed files, capped texts.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMMANDS_KEPT_BYTES", "FILES_KEPT", "HANDOFF_SUMMARY_BYTES", "Transcript", "handoff_for", "trim_utf8",
]

#: The record keeps the newest commands up to this much JSON (never fewer than the last one).
COMMANDS_KEPT_BYTES = 32 * 1024
#: A command line kept on the record is cut to this many characters.
COMMAND_CHARS = 2000
#: Changed files listed on the record (the count goes on).
FILES_KEPT = 1000
#: The handoff's summary: the final message cut to this many bytes (UTF-8); the whole message goes to details.
HANDOFF_SUMMARY_BYTES = 4096
#: The longest final message (and handoff details) kept.
FINAL_MESSAGE_CHARS = 256 * 1024
#: An agent message's text in a progress event (the record's final_message keeps more).
PROGRESS_TEXT_BYTES = 4096
#: Command output shown in the readable transcript, per command.
OUTPUT_LINES_SHOWN = 20


def trim_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never in the middle of a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def handoff_for(final_message: str | None) -> dict[str, Any] | None:
    """The ``handoff`` an orchestrator stores for the task: None without a non-empty final message (the original
    control plane refuses an empty summary, and with it the whole status update)."""
    if final_message is None or not final_message.strip():
        return None
    text = final_message.strip()
    summary = trim_utf8(text, HANDOFF_SUMMARY_BYTES)
    return {"summary": summary, "details": text if summary != text else None}


@dataclass
class Transcript:
    """The state of one run's agent CLI, rebuilt from the record's fields after a restart (:meth:`from_fields`)."""

    session_id: str | None = None
    final_message: str | None = None
    events: int = 0
    unknown_events: int = 0
    invalid_events: int = 0
    error: str | None = None  # the CLI's own account of why it failed (a failed turn), if it gave one
    failure_reason: str | None = None  # one of the record's failure reasons, when the CLI's events decide it
    cost_usd: float | None = None  # what the CLI says the run cost (Claude Code's total_cost_usd); None: not said

    def __post_init__(self) -> None:
        self.usage: dict[str, int] = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}
        self.files: dict[str, str] = {}  # path -> kind (add, update, delete), first FILES_KEPT paths
        self.files_count = 0
        self.commands: deque[dict[str, Any]] = deque()
        self.command_sizes: deque[int] = deque()
        self.commands_count = 0
        self.lines: list[str] = []  # readable lines not yet taken by :meth:`take_lines`
        self.progress: list[dict[str, Any]] = []  # progress items not yet taken by :meth:`take_progress`
        #: What a parser keeps between events (JSON values, small): persisted with the record like the rest.
        self.notes: dict[str, Any] = {}

    # --- what a parser reports -------------------------------------------------------------------------------
    def add_usage(self, input_tokens: Any, cached_input_tokens: Any, output_tokens: Any) -> None:
        """A turn's token usage (added up over the run's turns)."""
        for key, value in (("input_tokens", input_tokens), ("cached_input_tokens", cached_input_tokens),
                           ("output_tokens", output_tokens)):
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] += value

    def add_cost(self, cost_usd: float) -> None:
        """A cost the CLI reported, in US dollars (added up like usage; Claude Code reports one per run)."""
        self.cost_usd = round((self.cost_usd or 0.0) + cost_usd, 6)

    def agent_message(self, text: str) -> None:
        self.final_message = text[:FINAL_MESSAGE_CHARS]
        self.progress.append({"type": "agent_message", "text": trim_utf8(text, PROGRESS_TEXT_BYTES)})
        self.say(text)

    def command(self, command: str, exit_code: int | None, output: str | None = None) -> None:
        """A finished command (``exit_code`` None: it did not report one, e.g. declined)."""
        kept = {"command": command[:COMMAND_CHARS], "exit_code": exit_code}
        size = len(command[:COMMAND_CHARS]) + 40
        self.commands.append(kept)
        self.command_sizes.append(size)
        self.commands_count += 1
        self.progress.append({"type": "command", **kept})
        while len(self.commands) > 1 and sum(self.command_sizes) > COMMANDS_KEPT_BYTES:
            self.commands.popleft()
            self.command_sizes.popleft()
        shown = "?" if exit_code is None else str(exit_code)
        self.say(f"$ {command}  (exit {shown})")
        if output:
            lines = output.rstrip("\n").split("\n")
            more = len(lines) - OUTPUT_LINES_SHOWN
            self.lines.extend("  " + line for line in lines[:OUTPUT_LINES_SHOWN])
            if more > 0:
                self.lines.append(f"  … {more} more lines")

    def file_changed(self, path: str, kind: str) -> None:
        if path not in self.files:
            self.files_count += 1
            if len(self.files) >= FILES_KEPT:
                return
        self.files[path] = kind
        self.progress.append({"type": "file_change", "path": path, "kind": kind})
        self.say(f"{kind} {path}")

    def say(self, text: str) -> None:
        """A line (or lines) of the readable transcript."""
        self.lines.extend(text.rstrip("\n").split("\n") if text else [""])

    def failed(self, message: str, reason: str) -> None:
        """The CLI reported that the run failed (``reason``: a record failure reason)."""
        self.error, self.failure_reason = message[:4000], reason
        self.say(f"error: {message}")

    # --- what the runner reads --------------------------------------------------------------------------------
    def take_lines(self) -> str:
        """The readable lines added since the last call, as text to append to the transcript file."""
        lines, self.lines = self.lines, []
        return "".join(line + "\n" for line in lines)

    def take_progress(self) -> list[dict[str, Any]]:
        """The progress items (agent messages, commands, file changes) added since the last call, oldest first."""
        items, self.progress = self.progress, []
        return items

    def handoff(self) -> dict[str, Any] | None:
        return handoff_for(self.final_message)

    def to_fields(self) -> dict[str, Any]:
        """The record's fields (and, under ``_agent_cli``, what a restart needs to go on counting)."""
        return {
            "session_id": self.session_id,
            "final_message": self.final_message,
            "usage": dict(self.usage),
            "files_changed": [{"path": path, "kind": kind} for path, kind in self.files.items()],
            "files_changed_count": self.files_count,
            "commands": list(self.commands),
            "commands_count": self.commands_count,
            "events": self.events,
            **({"cost_usd": self.cost_usd} if self.cost_usd is not None else {}),
            "_agent_cli": {"unknown_events": self.unknown_events, "invalid_events": self.invalid_events,
                           "error": self.error, "failure_reason": self.failure_reason,
                           "notes": copy.deepcopy(self.notes)},  # the record never shares what the parser changes
        }

    @classmethod
    def from_fields(cls, extra: dict[str, Any]) -> Transcript:
        """The transcript of a run as the record kept it (a run re-adopted after a restart goes on from here)."""
        private = extra.get("_agent_cli") or {}
        transcript = cls(session_id=extra.get("session_id"), final_message=extra.get("final_message"),
                         events=extra.get("events") or 0, unknown_events=private.get("unknown_events", 0),
                         invalid_events=private.get("invalid_events", 0), error=private.get("error"),
                         failure_reason=private.get("failure_reason"), cost_usd=extra.get("cost_usd"))
        transcript.notes = copy.deepcopy(private.get("notes") or {})
        usage = extra.get("usage")
        if isinstance(usage, dict):
            transcript.add_usage(usage.get("input_tokens"), usage.get("cached_input_tokens"),
                                 usage.get("output_tokens"))
        for change in extra.get("files_changed") or []:
            transcript.files[change["path"]] = change["kind"]
        transcript.files_count = extra.get("files_changed_count") or len(transcript.files)
        for command in extra.get("commands") or []:
            transcript.commands.append(command)
            transcript.command_sizes.append(len(command.get("command") or "") + 40)
        transcript.commands_count = extra.get("commands_count") or len(transcript.commands)
        return transcript
