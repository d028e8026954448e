"""``codex``: ``codex exec --json [HOST_RUNNER_CODEX_ARGS...] -- <prompt>`` in the task's workspace; with a
``session_id``, ``codex exec --json [HOST_RUNNER_CODEX_ARGS...] resume -- <session_id> <prompt>`` continues that
session (codex 0.169.0 finds it from any directory and keeps its thread id). The ``--`` keeps user text from
being read as an option or a subcommand (a prompt ``resume`` or ``--help``).

With ``--json`` (the default; ``HOST_RUNNER_CODEX_JSON=false`` drops it) codex prints one JSON event per line;
:class:`~host_runner.agent_cli.codex_events.CodexEvents` reads them into the record. Its stdin is /dev/null
(codex reads a prompt from a stdin that is not a terminal).
"""

from __future__ import annotations

from host_runner.agent_cli.codex_events import CodexEvents
from host_runner.agent_cli.jsonl import EventParser
from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config

#: The program run when ``HOST_RUNNER_CODEX_BIN`` is not set (found on the task's PATH).
DEFAULT_BINARY = "codex"
#: The codex version whose events the parser is tested against (tests/support/model_server.py, .ci/run).
TESTED_VERSION = "0.169.0"


class Codex(Executor):
    name = "codex"
    resumes_sessions = True

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        json_mode = ("--json",) if config.codex_json else ()
        start = (config.codex_bin or DEFAULT_BINARY, "exec", *json_mode, *config.codex_args)
        if request.session_id:  # the options before `resume` apply to it as well
            return (*start, "resume", "--", request.session_id, request.prompt)
        return (*start, "--", request.prompt)

    def event_parser(self, config: Config) -> EventParser | None:
        return CodexEvents() if config.codex_json else None

    def not_found(self, argv: tuple[str, ...]) -> str | None:
        return f"codex binary not found ({argv[0]!r} is not on PATH)"


EXECUTOR = Codex()
