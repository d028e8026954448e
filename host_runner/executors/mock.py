"""``mock``: no process; the run pretends to work for ``HOST_RUNNER_MOCK_SECONDS`` and succeeds (tests, demos)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from host_runner.domain.request import TaskRequest
from host_runner.executors.base import Executor
from host_runner.ops.config import Config
from host_runner.run.launchers import Launcher, MockLauncher
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor


class Mock(Executor):
    name = "mock"

    def launcher(self, config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                 environment: Mapping[str, str]) -> Launcher:
        return MockLauncher(request.prompt, files, reactor, config.mock_seconds)


EXECUTOR = Mock()
