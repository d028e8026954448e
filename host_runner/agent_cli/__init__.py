"""Agent CLIs' machine-readable output: the shared :class:`Transcript` (record fields, readable stdout, handoff,
failure), the streaming JSON Lines reader (jsonl), and one event parser per CLI (``codex_events``, ``claude_events``:
both fill the same Transcript).

May import: host_runner.domain (and nothing else of the project: the executors and the actors use it).
"""

from __future__ import annotations

from host_runner.agent_cli.claude_events import ClaudeEvents
from host_runner.agent_cli.codex_events import CodexEvents, auth_problem
from host_runner.agent_cli.jsonl import EventParser, JsonLines, Line, apply_line
from host_runner.agent_cli.transcript import Transcript, handoff_for, trim_utf8

__all__ = ["ClaudeEvents", "CodexEvents", "EventParser", "JsonLines", "Line", "apply_line", "Transcript", "auth_problem",
           "handoff_for", "trim_utf8"]
