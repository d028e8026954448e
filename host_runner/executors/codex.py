"""``codex``: ``codex exec [HOST_RUNNER_CODEX_ARGS...] <prompt>`` in the task's workspace."""

from __future__ import annotations

from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config

#: The program run when ``HOST_RUNNER_CODEX_BIN`` is not set (found on the task's PATH).
DEFAULT_BINARY = "codex"


class Codex(Executor):
    name = "codex"

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        return (config.codex_bin or DEFAULT_BINARY, "exec", *config.codex_args, request.prompt)

    def not_found(self, argv: tuple[str, ...]) -> str | None:
        return f"codex binary not found ({argv[0]!r} is not on PATH)"


EXECUTOR = Codex()
