"""What an executor is: :class:`Executor`, the one object each module of this package provides.

An executor decides what a task's process is (its argv, and what goes with it), whether its tasks need a group,
what it needs of the runner's settings, and which launcher starts it. The actors decide which actor runs it from
``speaks_agent_protocol`` (this package may not import them).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from host_runner.agent_cli.jsonl import EventParser
from host_runner.domain.request import TaskRequest
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError, build_process_spec
from host_runner.run.launchers import Launcher, ProcessLauncher
from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor


class Executor(ABC):
    """One executor. Implements :class:`host_runner.domain.seams.ExecutorRules` (what validation and the settings
    ask of it) and what the actors ask of it besides."""

    #: The executor's name (one of host_runner.domain.names.EXECUTORS).
    name: ClassVar[str]
    #: True when its tasks queue per group (one at a time each), so a submission must give one.
    needs_group: ClassVar[bool] = False
    #: True when its process speaks the agent-runner protocol (stdin object, output frames, follow-up messages):
    #: the actors run it in their agent TaskActor and let it take messages.
    speaks_agent_protocol: ClassVar[bool] = False
    #: True when a submission's ``session_id`` makes its command resume that session of the agent CLI: the
    #: record then shows it as ``resumed_session_id`` (and ``session_id`` is the session the run ended with).
    resumes_sessions: ClassVar[bool] = False

    def settings_problem(self, settings: Any) -> str | None:
        """What the runner's settings (a :class:`Config`) lack for this to be its default executor; None: nothing."""
        return None

    def command(self, config: Config, request: TaskRequest) -> tuple[str, ...]:
        """The argv of the task's process; raises :class:`LaunchError` when the settings give none."""
        raise LaunchError(f"executor {self.name!r} does not start a process")

    def event_parser(self, config: Config) -> EventParser | None:
        """The parser of the JSON events the process prints on stdout, for an agent CLI run in its
        machine-readable mode: the actors then follow them into the record (actors/transcript_session.py)."""
        return None

    def not_found(self, argv: tuple[str, ...]) -> str | None:
        """What to say when ``argv[0]`` is not found (None: the common ``command not found``)."""
        return None

    def launcher(self, config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                 environment: Mapping[str, str]) -> Launcher:
        """The launcher of a new run in ``cwd`` (blocking: called from a helper thread)."""
        argv = self.command(config, request)
        spec = build_process_spec(config, request, argv, cwd, environment, not_found=self.not_found(argv))
        return ProcessLauncher(spec, files, reactor, config.kill_grace_seconds, config.wrapper_argv,
                               config.cgroup_request(request.task_id, request.run_id, request.limits))
