"""Claude Code's ``-p --output-format stream-json --verbose`` events (checked against Claude Code 2.1.92) into a
:class:`~host_runner.agent_cli.transcript.Transcript`.

Events (one JSON object per line, ``type`` first):

- ``system`` / subtype ``init``: ``session_id``, ``cwd``, ``model``, ``tools``, ``permissionMode``; other
  ``system`` subtypes (compaction, hooks, ...) are known and shown nowhere.
- ``assistant``: ``message.content``, a list of ``text``, ``thinking`` and ``tool_use`` blocks (``id``, ``name``,
  ``input``). An API failure arrives as a synthetic assistant message (``model: "<synthetic>"``) whose text is
  the error and whose top-level ``error`` says what kind (``authentication_failed``, ``unknown``, ...): that text
  is the failure's message, never the agent's final message.
- ``user``: ``message.content`` with ``tool_result`` blocks (``tool_use_id``, ``content``, ``is_error``); the
  ``tool_use_result`` next to it holds the tool's structured output (Bash: ``stdout``, ``stderr``, ``interrupted``;
  Write/Edit: ``type`` ``create`` / ``update``, ``filePath``).
- ``result``: the end: ``subtype`` (``success``, ``error_max_turns``, ``error_during_execution``), ``is_error``
  (API failures come as ``subtype: "success"`` with ``is_error: true``: the status is taken from ``is_error``),
  ``result`` (the final text, or the error), ``errors``, ``num_turns``, ``total_cost_usd``, ``usage``
  (``input_tokens`` without the cache, ``cache_read_input_tokens``, ``cache_creation_input_tokens``,
  ``output_tokens``: summed over the run) and ``session_id``.

Claude Code reports no exit code for a Bash command: the record's ``exit_code`` is 0 for a result that is not an
error, 1 for one that is (a non-zero exit, a timeout, a refused permission), so ``commands`` reads the same as
codex's. The tools that change files (Write, Edit, MultiEdit, NotebookEdit) fill ``files_changed``.
"""

from __future__ import annotations

from typing import Any

from host_runner.agent_cli.codex_events import auth_problem
from host_runner.agent_cli.transcript import COMMAND_CHARS, Transcript

__all__ = ["ClaudeEvents"]

#: The tools whose successful result changed the file named by ``file_path`` / ``notebook_path``.
_FILE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
#: ``result`` subtypes and the record's failure reason when they come with ``is_error``.
_SUBTYPE_REASONS = {"error_max_turns": "max_turns"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _blocks(event: dict[str, Any]) -> list[dict[str, Any]]:
    content = _dict(event.get("message")).get("content")
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _result_text(content: Any) -> str:
    """A tool_result's content: a string, or a list of text blocks."""
    if isinstance(content, list):
        return "\n".join(_text(_dict(part).get("text")) for part in content)
    return _text(content)


#: Tool calls remembered until their results come (they normally follow at once): never more than this.
PENDING_CALLS = 100


class ClaudeEvents:
    """The Claude Code event parser (see the module's docstring). Between events it remembers, in the
    transcript's ``notes`` (kept with the record, so a re-adopted run reads on with them), the tool calls whose
    results have not come yet (``calls``: tool_use id -> name and the command or path) and whether the CLI
    reported a refused login (``auth_failed``)."""

    def apply(self, event: dict[str, Any], transcript: Transcript) -> bool:
        kind = event.get("type")
        if kind == "system":
            if event.get("subtype") == "init":
                transcript.session_id = _text(event.get("session_id")) or transcript.session_id
            return True
        if kind == "assistant":
            self._assistant(event, transcript)
            return True
        if kind == "user":
            for block in _blocks(event):
                if block.get("type") == "tool_result":
                    self._tool_result(block, _dict(event.get("tool_use_result")), transcript)
            return True
        if kind == "result":
            self._result(event, transcript)
            return True
        return False  # stream_event (--include-partial-messages), newer types: counted as unknown

    def _assistant(self, event: dict[str, Any], transcript: Transcript) -> None:
        error = _text(event.get("error"))
        if error:  # a synthetic message: the API call failed; the result event that follows says so (once)
            if error == "authentication_failed":
                transcript.notes["auth_failed"] = True
            return
        for block in _blocks(event):
            kind = block.get("type")
            if kind == "text" and _text(block.get("text")).strip():
                if event.get("parent_tool_use_id"):  # a subagent's (Task tool) text: not the final message
                    transcript.say(_text(block.get("text")))
                else:
                    transcript.agent_message(_text(block.get("text")))
            elif kind == "tool_use" and isinstance(block.get("id"), str):
                calls = transcript.notes.setdefault("calls", {})
                if len(calls) < PENDING_CALLS:
                    arguments = _dict(block.get("input"))
                    path = _text(arguments.get("file_path")) or _text(arguments.get("notebook_path"))
                    calls[block["id"]] = {"name": _text(block.get("name")),
                                          "command": _text(arguments.get("command"))[:COMMAND_CHARS],
                                          "path": path[:COMMAND_CHARS]}

    def _tool_result(self, block: dict[str, Any], structured: dict[str, Any], transcript: Transcript) -> None:
        call = transcript.notes.get("calls", {}).pop(_text(block.get("tool_use_id")), None)
        if call is None:
            return
        failed = block.get("is_error") is True
        name, path = call["name"], call["path"]
        if name == "Bash":
            output = _result_text(block.get("content"))
            if structured and not failed:  # the tool's own account: stdout and stderr as the command printed them
                output = "\n".join(part for part in (_text(structured.get("stdout")), _text(structured.get("stderr")))
                                   if part)
            transcript.command(call["command"], 1 if failed else 0, output)
        elif name in _FILE_TOOLS:
            if failed:
                transcript.say(f"{name} {path} failed: {_result_text(block.get('content'))[:500]}")
            elif path:
                transcript.file_changed(path, "add" if structured.get("type") == "create" else "update")
        elif failed:
            transcript.say(f"tool {name} failed: {_result_text(block.get('content'))[:500]}")

    def _result(self, event: dict[str, Any], transcript: Transcript) -> None:
        transcript.session_id = _text(event.get("session_id")) or transcript.session_id
        usage = _dict(event.get("usage"))
        cached, created = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
        # The record's input_tokens count every input token (as codex's do): Anthropic's leave out the cache's.
        total_input = sum(value for value in (usage.get("input_tokens"), cached, created)
                          if isinstance(value, int) and not isinstance(value, bool))
        transcript.add_usage(total_input, cached, usage.get("output_tokens"))
        cost = event.get("total_cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            transcript.add_cost(float(cost))
        if event.get("is_error") is not True:
            if transcript.final_message is None and _text(event.get("result")).strip():
                transcript.agent_message(_text(event.get("result")))  # a final text no assistant event carried
            return
        subtype = _text(event.get("subtype"))
        errors = event.get("errors") if isinstance(event.get("errors"), list) else []
        message = _text(event.get("result")) or "; ".join(_text(e) for e in errors) or subtype or "Claude Code failed"
        if subtype in _SUBTYPE_REASONS:
            reason = _SUBTYPE_REASONS[subtype]
        elif transcript.notes.get("auth_failed") or auth_problem(message):
            reason = "auth_required"
        else:
            reason = "agent_error"
        transcript.failed(message, reason)
