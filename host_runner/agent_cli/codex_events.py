"""``codex exec --json`` events (checked against codex 0.169.0, codex-rs/exec/src/exec_events.rs) into a
:class:`~host_runner.agent_cli.transcript.Transcript`.

Top-level events: ``thread.started`` (``thread_id``), ``turn.started``, ``turn.completed`` (``usage``:
``input_tokens``, ``cached_input_tokens``, ``output_tokens``), ``turn.failed`` (``error.message``), ``error``
(``message``: the stream's own error, followed by ``turn.failed``), ``item.started`` / ``item.updated`` /
``item.completed`` (``item``: ``id``, ``type`` and the type's fields). Items: ``agent_message`` (``text``),
``reasoning`` (``text``), ``command_execution`` (``command``, ``aggregated_output``, ``exit_code``, ``status``),
``file_change`` (``changes``: ``path``, ``kind``; ``status``), ``mcp_tool_call`` (``server``, ``tool``,
``status``, ``error``), ``web_search`` (``query``), ``todo_list`` (``items``: ``text``, ``completed``), ``error``
(``message``: a warning; codex goes on and exits 0, so it never fails the run). Event names change between
codex versions: anything else is counted as unknown, never an error.
"""

from __future__ import annotations

import re
from typing import Any

from host_runner.agent_cli.transcript import Transcript

__all__ = ["CodexEvents", "auth_problem"]

#: What codex (and the API behind it) says when the credentials are missing or refused.
_AUTH = re.compile(r"\b401\b|unauthori[sz]ed|invalid api key|incorrect api key|not logged in|missing api key|"
                   r"authentication|login required", re.IGNORECASE)


def auth_problem(message: str) -> bool:
    """True when an error message says the CLI has no valid credentials."""
    return bool(_AUTH.search(message))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class CodexEvents:
    """The codex event parser (see the module's docstring); stateless, all state is in the transcript."""

    def apply(self, event: dict[str, Any], transcript: Transcript) -> bool:
        kind = event.get("type")
        if kind == "thread.started":
            transcript.session_id = _text(event.get("thread_id")) or transcript.session_id
            return True
        if kind == "turn.started":
            return True
        if kind == "turn.completed":
            usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
            transcript.add_usage(usage.get("input_tokens"), usage.get("cached_input_tokens"),
                                 usage.get("output_tokens"))
            return True
        if kind == "turn.failed":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            message = _text(error.get("message")) or "the turn failed"
            transcript.failed(message, "auth_required" if auth_problem(message) else "agent_error")
            return True
        if kind == "error":  # the stream's fatal error; the turn.failed that follows says the same
            return True
        if kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            return isinstance(item, dict) and self._item(item, transcript, completed=kind == "item.completed")
        return False

    def _item(self, item: dict[str, Any], transcript: Transcript, *, completed: bool) -> bool:
        kind = item.get("type")
        if kind not in _ITEM_TYPES:
            return False
        if not completed:  # started/updated: the completed event carries the final state
            return True
        if kind == "agent_message":
            transcript.agent_message(_text(item.get("text")))
        elif kind == "reasoning":
            pass  # the model's reasoning summary: in stdout.log, not in the readable transcript
        elif kind == "command_execution":
            exit_code = item.get("exit_code")
            transcript.command(_text(item.get("command")), exit_code if isinstance(exit_code, int) else None,
                               _text(item.get("aggregated_output")))
        elif kind == "file_change":
            for change in item.get("changes") or []:
                if isinstance(change, dict) and isinstance(change.get("path"), str):
                    transcript.file_changed(change["path"], _text(change.get("kind")) or "update")
        elif kind == "mcp_tool_call":
            error = item.get("error") if isinstance(item.get("error"), dict) else {}
            status = _text(item.get("status"))
            suffix = f": {_text(error.get('message'))}" if error else ""
            transcript.say(f"tool {_text(item.get('server'))}.{_text(item.get('tool'))} {status}{suffix}")
        elif kind == "web_search":
            transcript.say(f"web search: {_text(item.get('query'))}")
        elif kind == "todo_list":
            for entry in item.get("items") or []:
                if isinstance(entry, dict):
                    transcript.say(f"[{'x' if entry.get('completed') else ' '}] {_text(entry.get('text'))}")
        elif kind == "error":
            transcript.say(f"warning: {_text(item.get('message'))}")  # codex goes on: never fails the run
        return True


_ITEM_TYPES = frozenset({"agent_message", "reasoning", "command_execution", "file_change", "mcp_tool_call",
                         "web_search", "todo_list", "error", "plan", "collab_tool_call"})
