"""A scripted stand-in for the OpenAI Responses API on 127.0.0.1, and how to point the real codex CLI at it.

The only fake in the codex tests is the model: the CLI (pinned ``@openai/codex``, installed by ``.ci/run`` into
the npm cache folder) is the real one, runs real commands and writes real files. Each ``POST /v1/responses``
takes the next :class:`Reply` of the script and streams it as server-sent events, as the Responses API does
(``event: <type>`` / ``data: <json>``); a finished script answers with a plain final message.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support.npm_cli import npm_binary, require_npm_binary

__all__ = [
    "CODEX_VERSION", "ModelServer", "Reply", "codex_binary", "codex_settings", "custom_tool_call", "function_call", "message",
    "require_codex",
]

#: The codex version the parser is tested against (also in .ci/run).
CODEX_VERSION = "0.169.0"
#: The name of the dummy API key's variable (the provider entry names it; the value is never real).
API_KEY_VARIABLE = "HOST_RUNNER_TEST_MODEL_KEY"


def codex_binary() -> Path | None:
    """The pinned codex from the npm cache folder (``HOST_RUNNER_NPM_CACHE``), or None when not installed."""
    return npm_binary("codex")


def require_codex() -> Path:
    """The codex binary; skips without it, fails under CI=true (where .ci/run installs it)."""
    return require_npm_binary("codex", f"@openai/codex@{CODEX_VERSION}")


@dataclass
class Reply:
    """One answer of the model: ``events`` streamed as SSE, or an HTTP error ``status``; ``hang`` keeps the
    stream open after the events until the server closes (a turn that never ends)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    hang: bool = False


def message(text: str, item_id: str = "msg-1") -> dict[str, Any]:
    """An assistant message output item."""
    return {"type": "response.output_item.done", "item": {
        "type": "message", "role": "assistant", "id": item_id,
        "content": [{"type": "output_text", "text": text}]}}


def function_call(name: str, arguments: dict[str, Any], call_id: str = "call-1") -> dict[str, Any]:
    """A function (tool) call output item."""
    return {"type": "response.output_item.done", "item": {
        "type": "function_call", "call_id": call_id, "name": name, "arguments": json.dumps(arguments)}}


def custom_tool_call(name: str, text: str, call_id: str = "call-2") -> dict[str, Any]:
    """A freeform (custom) tool call output item: codex offers ``apply_patch`` this way to known models."""
    return {"type": "response.output_item.done", "item": {
        "type": "custom_tool_call", "call_id": call_id, "name": name, "input": text}}


def _wrap(events: Sequence[dict[str, Any]], response_id: str, usage: dict[str, Any]) -> list[dict[str, Any]]:
    completed = {"type": "response.completed", "response": {"id": response_id, "usage": usage}}
    return [{"type": "response.created", "response": {"id": response_id}}, *events, completed]


class ModelServer:
    """The stand-in: ``script`` is consumed one :class:`Reply` per request; ``requests`` keeps each body."""

    def __init__(self, script: Sequence[Reply] = ()) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.usage = {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 7,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 127}
        self.closing = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (codex may ask for the model list)
                self._send(404, b'{"error": {"message": "not here"}}', "application/json")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.requests.append(body)
                    number = len(server.requests)
                    reply = server.script.pop(0) if server.script else Reply([message("done")])
                if reply.status != 200:
                    self._send(reply.status, b'{"error": {"message": "scripted failure", "type": "server_error"}}',
                               "application/json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                events = _wrap(reply.events, f"resp-{number}", server.usage)
                if reply.hang:
                    events = events[:-1]
                for event in events:
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                if reply.hang:
                    server.closing.wait()
                self.close_connection = True

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def codex_settings(binary: Path, server: ModelServer, home: Path,
                   model: str = "gpt-5.5") -> tuple[dict[str, Any], dict[str, str]]:
    """Runner settings and task environment that run the real codex against ``server`` with its own
    ``CODEX_HOME``: a ``model_providers`` entry with no retries (a 500 fails at once), full access (the test's
    workspace is a tmp directory), and no user or system configuration. ``model``: one codex 0.169.0 knows
    offers ``apply_patch`` (so file changes are reported); an unknown one makes codex print a warning item."""
    home.mkdir(parents=True, exist_ok=True)
    args = (
        "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "-m", model,
        "-c", "model_provider=scripted",
        "-c", "model_providers.scripted.name=scripted",
        "-c", f"model_providers.scripted.base_url={server.base_url}",
        "-c", f"model_providers.scripted.env_key={API_KEY_VARIABLE}",
        "-c", "model_providers.scripted.wire_api=responses",
        "-c", "model_providers.scripted.request_max_retries=0",
        "-c", "model_providers.scripted.stream_max_retries=0",
    )
    env = {"CODEX_HOME": str(home), API_KEY_VARIABLE: "dummy-key-for-tests", "PATH": os.environ["PATH"],
           "HOME": str(home)}
    return {"codex_bin": str(binary), "codex_args": args, "executor": "codex"}, env
