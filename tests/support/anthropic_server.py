"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1, and how to point the real Claude Code CLI at
it.

The only fake in the claude tests is the model: the CLI (pinned ``@anthropic-ai/claude-code``, installed by
``.ci/run`` into the npm cache folder) is the real one, runs real Bash commands and writes real files. Each
``POST /v1/messages`` takes the next :class:`~support.model_server.Reply` of the script, whose ``events`` are
the assistant message's content blocks (:func:`text`, :func:`bash`, :func:`write`), and streams them as the
Messages API does (server-sent events: ``message_start``, ``content_block_start`` / ``_delta`` / ``_stop`` per
block, ``message_delta`` with the stop reason and usage, ``message_stop``); a finished script answers with a
plain final message. Claude Code 2.1.92 in ``-p`` mode sends nothing else to the model (a ``HEAD /`` to check
the connection; ``count_tokens`` is answered in case).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.model_server import Reply, ScriptedServer
from support.npm_cli import require_npm_binary

__all__ = ["CLAUDE_VERSION", "AnthropicServer", "REQUEST_COST_USD", "bash", "claude_settings", "require_claude",
           "text", "write"]

#: The Claude Code version the parser is tested against (also in .ci/run and host_runner/executors/claude.py).
CLAUDE_VERSION = "2.1.92"
#: Every scripted answer's usage (the record adds cache reads to input_tokens).
USAGE = {"input_tokens": 100, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0, "output_tokens": 7}
#: What Claude Code 2.1.92 says one such answer costs (its default model, claude-sonnet-4-6: $3 / $0.30 / $15 per
#: million input / cache-read / output tokens).
REQUEST_COST_USD = 0.000411


def require_claude() -> Path:
    """The pinned claude binary; skips without it, fails under CI=true (where .ci/run installs it)."""
    return require_npm_binary("claude", f"@anthropic-ai/claude-code@{CLAUDE_VERSION}")


def text(value: str) -> dict[str, Any]:
    """A text block of the assistant's message."""
    return {"type": "text", "text": value}


def bash(command: str, tool_id: str = "toolu_bash_1") -> dict[str, Any]:
    """A call of Claude Code's Bash tool."""
    return {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": command, "description": "run"}}


def write(path: str, content: str, tool_id: str = "toolu_write_1") -> dict[str, Any]:
    """A call of Claude Code's Write tool (it wants an absolute path)."""
    return {"type": "tool_use", "id": tool_id, "name": "Write", "input": {"file_path": path, "content": content}}


def _stream(blocks: Sequence[dict[str, Any]], message_id: str, model: str) -> list[dict[str, Any]]:
    """The server-sent events of one streamed assistant message with ``blocks``, without the final stop."""
    start_usage = {**USAGE, "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}]
    for index, block in enumerate(blocks):
        if block["type"] == "tool_use":
            opened = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opened, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
        events += [{"type": "content_block_start", "index": index, "content_block": opened},
                   {"type": "content_block_delta", "index": index, "delta": delta},
                   {"type": "content_block_stop", "index": index}]
    stop = "tool_use" if any(block["type"] == "tool_use" for block in blocks) else "end_turn"
    events.append({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": USAGE["output_tokens"]}})
    return events


class AnthropicServer(ScriptedServer):
    """The Messages-API stand-in: each ``POST /v1/messages`` streams its reply's content blocks."""

    def stream(self, reply: Reply, number: int, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [*_stream(reply.events, f"msg_{number}", str(body.get("model"))), {"type": "message_stop"}]

    def default_reply(self) -> Reply:
        return Reply([text("done")])

    def error_body(self, status: int) -> bytes:
        kind = {401: "authentication_error", 404: "not_found_error"}.get(status, "api_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": "scripted failure"}}).encode()

    def side_answer(self, path: str) -> bytes | None:
        return b'{"input_tokens": 10}' if "count_tokens" in path else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def claude_settings(binary: Path, server: AnthropicServer, home: Path,
                    args: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Runner settings and task environment that run the real Claude Code against ``server`` with a ``HOME``
    (and so ``~/.claude``, where it keeps sessions) of its own: a dummy API key, no retries (a 500 fails at
    once), no traffic but the model's. The tests run as root, where Claude Code refuses ``bypassPermissions``
    unless ``IS_SANDBOX=1``; ``--permission-mode acceptEdits`` (file edits) with ``--allowedTools Bash Write``
    lets the model run commands and write files without it."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"),
           "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": "dummy-key-for-tests",
           "CLAUDE_CODE_MAX_RETRIES": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_AUTOUPDATER": "1"}
    settings = {"claude_bin": str(binary), "executor": "claude",
                "claude_args": ("--permission-mode", "acceptEdits", *args, "--allowedTools", "Bash", "Write")}
    return settings, env
