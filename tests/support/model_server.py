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
    "CODEX_VERSION", "ModelServer", "Reply", "ScriptedServer", "codex_binary", "codex_runner", "codex_settings",
    "custom_tool_call", "function_call", "message", "require_codex",
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


class ScriptedServer:
    """A scripted model server on 127.0.0.1: each model request takes the next :class:`Reply` of ``script`` (a
    finished script answers :meth:`default_reply`) and ``requests`` keeps each body. Subclasses say how a reply
    is streamed as server-sent events (:meth:`stream`), what an error's body is and what else they answer."""

    def __init__(self, script: Sequence[Reply] = ()) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 (Claude Code checks that the API answers)
                self._send(200, b"", "text/plain")

            def do_GET(self) -> None:  # noqa: N802 (codex may ask for the model list)
                self._send(404, server.error_body(404), "application/json")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                side = server.side_answer(self.path)
                if side is not None:
                    self._send(200, side, "application/json")
                    return
                with server.lock:
                    server.requests.append(body)
                    number = len(server.requests)
                    reply = server.script.pop(0) if server.script else server.default_reply()
                if reply.status != 200:
                    self._send(reply.status, server.error_body(reply.status), "application/json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                events = server.stream(reply, number, body)
                if reply.hang:
                    events = events[:-1]
                for event in events:
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                if reply.hang:
                    server.closing.wait()
                self.close_connection = True

            def _send(self, code: int, payload: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stream(self, reply: Reply, number: int, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of the ``number``th answer (the last one ends the answer: a ``hang`` reply leaves it out)."""
        raise NotImplementedError

    def default_reply(self) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int) -> bytes:
        return b'{"error": {"message": "scripted failure", "type": "server_error"}}'

    def side_answer(self, path: str) -> bytes | None:
        """The JSON answer to a POST that is not a model request (None: ``path`` is a model request)."""
        return None

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class ModelServer(ScriptedServer):
    """The Responses-API stand-in: each ``POST /v1/responses`` streams its reply's output items."""

    def __init__(self, script: Sequence[Reply] = ()) -> None:
        self.usage = {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 7,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 127}
        super().__init__(script)

    def stream(self, reply: Reply, number: int, body: dict[str, Any]) -> list[dict[str, Any]]:
        return _wrap(reply.events, f"resp-{number}", self.usage)

    def default_reply(self) -> Reply:
        return Reply([message("done")])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


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


def codex_runner(make_runner: Any, model: ModelServer, tmp_path: Path, model_name: str = "gpt-5.5",
                 **settings: Any) -> Any:
    """A test runner (from the ``make_runner`` fixture) whose codex executor is the real CLI against ``model``."""
    config, env = codex_settings(require_codex(), model, tmp_path / "codex-home", model_name)
    return make_runner(env=env, **config, **settings)
