"""``agent``: an agent-runner (``HOST_RUNNER_AGENT_CMD``) fed its task through stdin and speaking the agent-runner
protocol (host_runner.agent): one task of a group at a time, follow-up messages while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from host_runner.agent.protocol import prepare_agent_spec
from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError
from host_runner.run.launchers import Launcher, ProcessLauncher
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor


class Agent(Executor):
    name = "agent"
    needs_group = True
    speaks_agent_protocol = True

    def settings_problem(self, settings: Any) -> str | None:
        if settings.agent_cmd is None:
            return f"HOST_RUNNER_EXECUTOR={self.name} needs HOST_RUNNER_AGENT_CMD (the agent-runner's command line)"
        return None

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        if not config.agent_cmd:
            raise LaunchError("HOST_RUNNER_AGENT_CMD is not set: the agent executor has no command to run")
        return config.agent_cmd  # the prompt travels on stdin, never in argv

    def launcher(self, config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                 environment: Mapping[str, str]) -> Launcher:
        spec = prepare_agent_spec(config, request, self.command(config, request), cwd, environment, files)
        return ProcessLauncher(spec, files, reactor, config.kill_grace_seconds, config.wrapper_argv,
                               config.cgroup_request(request.task_id, request.run_id, request.limits))


EXECUTOR = Agent()
