"""``claude``: Claude Code as ``claude -p --output-format stream-json --verbose [--resume <id>]
[HOST_RUNNER_CLAUDE_ARGS...] -- <prompt>`` in the task's workspace.

Claude Code prints one JSON event per line; :class:`~host_runner.agent_cli.claude_events.ClaudeEvents` reads
them into the record, and the ``result`` event decides the status (Claude Code may fail with exit code 0, and
reports API failures with ``is_error``). A submit's ``session_id`` resumes that session (``--resume``): Claude
Code finds only sessions saved for the same working directory. The ``--`` ends the options, so a prompt that
starts with ``-`` stays the prompt, and options that take several values (``--allowedTools Bash Write``) may end
HOST_RUNNER_CLAUDE_ARGS. Its stdin is /dev/null (in ``-p`` mode Claude Code reads stdin when it is not a terminal).
"""

from __future__ import annotations

from host_runner.agent_cli.claude_events import ClaudeEvents
from host_runner.agent_cli.jsonl import EventParser
from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config

#: The program run when ``HOST_RUNNER_CLAUDE_BIN`` is not set (found on the task's PATH).
DEFAULT_BINARY = "claude"
#: The Claude Code version whose events the parser is tested against (tests/support/anthropic_server.py, .ci/run).
TESTED_VERSION = "2.1.92"


class Claude(Executor):
    name = "claude"
    resumes_sessions = True  # a submit's session_id: claude --resume <id> (resumed_session_id on the record)

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        resume = ("--resume", request.session_id) if request.session_id else ()
        return (config.claude_bin or DEFAULT_BINARY, "-p", "--output-format", "stream-json", "--verbose", *resume,
                *config.claude_args, "--", request.prompt)

    def event_parser(self, config: Config) -> EventParser | None:
        return ClaudeEvents()

    def not_found(self, argv: tuple[str, ...]) -> str | None:
        return f"claude binary not found ({argv[0]!r} is not on PATH)"


EXECUTOR = Claude()
