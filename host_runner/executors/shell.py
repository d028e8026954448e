"""``shell``: the operator's command template (``HOST_RUNNER_CMD_TEMPLATE``) with ``{prompt}``, ``{task_id}`` and
``{run_id}`` replaced inside its argv items (never spliced into shell code)."""

from __future__ import annotations

from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError, substitute


class Shell(Executor):
    name = "shell"

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        if config.cmd_template is None:
            raise LaunchError("HOST_RUNNER_CMD_TEMPLATE is not set: the shell executor has no command to run")
        values = {"prompt": request.prompt, "task_id": request.task_id, "run_id": request.run_id}
        return tuple(substitute(item, values) for item in config.cmd_template)


EXECUTOR = Shell()
