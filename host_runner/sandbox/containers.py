"""Launchers for ``docker-sandbox`` runs (the sweep of orphaned containers at start is in sweep.py).

A sandbox run is a container created with ``docker create`` (so its id is known before it runs and is reported
with ``running``) and then started by an attached ``docker start --attach`` client. The client runs under the
wrapper like any task process, with its stdout and stderr going to the run's files, so the exit status is
recorded even if the runner restarts meanwhile.

The container lives in the Docker daemon, not in the client's process group: signalling the client would not
stop it. So stopping uses the container itself (``docker kill``, then ``docker rm -f``), and every end of a run
(normal exit, cancel, timeout) removes the container before the actor hears about the exit. Docker calls block,
so they run in helper threads; the actor never waits on them.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from host_runner.domain.errors import ValidationError
from host_runner.domain.limits import CgroupUsage
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.domain.sandbox_spec import SandboxSpec, check_again
from host_runner.ops.config import Config
from host_runner.run.commands import LaunchError
from host_runner.run.launchers import Launched
from host_runner.run.process_group import (
    ExitStatus,
    ProcessSpec,
    RunFiles,
    Spawned,
    read_exit_status,
    read_tail,
    spawn,
    start_ticks,
)
from host_runner.run.reactor import Reactor
from host_runner.sandbox.docker_cli import (
    LABEL_INSTANCE,
    LABEL_RUN,
    LABEL_TASK,
    DockerCli,
    DockerError,
    client_environment,
    container_name,
    create_args,
    last_line,
)

logger = logging.getLogger(__name__)

#: A container that could not be removed at the end of its run (the daemon was down) is tried again this often,
#: for this long; whatever is still left after that is removed by the sweep at the runner's next start.
REMOVE_RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)
REMOVE_RETRY_FOR_SECONDS = 3600.0


def _in_background(name: str, work: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=work, args=args, name=name, daemon=True).start()


def remove_until_gone(cli: DockerCli, container_id: str, give_up_after: float = REMOVE_RETRY_FOR_SECONDS) -> bool:
    """Helper thread: ``docker rm -f`` until it works (the daemon came back) or ``give_up_after`` seconds passed."""
    deadline = time.monotonic() + give_up_after
    attempt = 0
    while time.monotonic() < deadline:
        time.sleep(REMOVE_RETRY_SECONDS[min(attempt, len(REMOVE_RETRY_SECONDS) - 1)])
        attempt += 1
        try:
            cli.remove(container_id)
        except DockerError:
            continue
        logger.info("removed container %s once the daemon answered again", container_id[:12])
        return True
    logger.warning("gave up removing container %s; the next start's sweep removes it", container_id[:12])
    return False


def _never_started(state: Mapping[str, Any]) -> bool:
    return str(state.get("StartedAt", "")).startswith("0001-")


class _ContainerRun:
    """What every container launcher shares: stopping through the daemon and concluding after the exit."""

    def __init__(self, cli: DockerCli, config: Config, files: RunFiles, reactor: Reactor) -> None:
        self.cli = cli
        self.config = config
        self.files = files
        self.reactor = reactor
        self.container_id: str | None = None
        self.pid: int | None = None
        self._outcome: ExitStatus | None = None

    def stop(self, force: bool) -> None:
        """TERM the container's command (through ``--init`` when enabled), or remove the container: never blocks."""
        if self.container_id is None:
            return
        if force:
            _in_background("docker-rm", self.cli.remove_quietly, self.container_id)
        else:
            _in_background("docker-kill", self._terminate, self.container_id)

    def _terminate(self, container_id: str) -> None:
        try:
            if self.cli.kill(container_id, "TERM"):
                return
        except DockerError as exc:
            logger.warning("could not signal container %s: %s", container_id, exc)
            return
        # Not running: its client has not started it yet (a cancel right after `running`), so there is nothing
        # to stop gracefully, and waiting out the grace period would only let it start. Remove it now.
        self.cli.remove_quietly(container_id)

    def outcome(self) -> ExitStatus | None:
        return self._outcome

    def usage(self) -> CgroupUsage | None:
        """None: the engine limits a container in its own cgroup (HOST_RUNNER_DOCKER_*), not the runner."""
        return None

    def after_exit(self) -> None:
        """Nothing left to do: the container was removed before the exit was reported."""

    def finish(self) -> dict[str, Any]:
        return {}

    def _conclude_then(self, returncode: int | None, on_exit: Callable[[], None]) -> None:
        """Helper thread, after the client (or watcher) exited: learn how the container ended, remove it, and
        only then tell the actor, so that a terminal record never describes a container that still exists."""
        try:
            self._outcome = self._conclude(returncode)
        except Exception:  # never leave the actor without its exit notification
            logger.exception("could not conclude container %s", self.container_id)
            self._outcome = read_exit_status(self.files.exit_status)
        finally:
            on_exit()

    def _conclude(self, returncode: int | None) -> ExitStatus | None:
        recorded = read_exit_status(self.files.exit_status)
        if recorded is None and returncode is not None and returncode < 0:  # the client's wrapper was killed
            recorded = ExitStatus(exit_code=128 - returncode, signal=-returncode)
        state = None
        if self.container_id is not None:
            try:
                state = self.cli.inspect_state(self.container_id)
            except DockerError as exc:
                logger.warning("could not inspect container %s: %s", self.container_id, exc)
                if not self.cli.remove_quietly(self.container_id):
                    # The daemon went away while the container ran: its fate is unknown, the run cannot be
                    # called a success on its client's word, and the container is removed once it is back.
                    _in_background("docker-rm-retry", remove_until_gone, self.cli, self.container_id)
                    code = recorded.exit_code if recorded is not None and recorded.exit_code else 125
                    return ExitStatus(exit_code=code, error=f"{exc} (while the container ran; removal retried)")
                return self._describe(None, recorded)
            if not self.cli.remove_quietly(self.container_id):
                _in_background("docker-rm-retry", remove_until_gone, self.cli, self.container_id)
        return self._describe(state, recorded)

    def _describe(self, state: Mapping[str, Any] | None, recorded: ExitStatus | None) -> ExitStatus | None:
        """The container's own account wins over its client's: the client also exits non-zero for its errors."""
        if state is None or state.get("Running"):
            return recorded  # gone (removed by a cancel) or unknown: the client's exit status is all we have
        code = int(state.get("ExitCode") or 0)
        if _never_started(state):
            reason = state.get("Error") or last_line(read_tail(self.files.stderr, 4096)) or "no reason given"
            exit_code = code or (recorded.exit_code if recorded is not None else 0) or 125
            return ExitStatus(exit_code=exit_code, error=f"the container did not start: {reason}")
        if state.get("OOMKilled"):
            limit = self.config.docker.memory
            return ExitStatus(exit_code=code, error=f"out of memory: the container exceeded its {limit} limit")
        return ExitStatus(exit_code=code)


class ContainerLauncher(_ContainerRun):
    """Creates the container, then starts it attached under the wrapper."""

    def __init__(self, cli: DockerCli, config: Config, sandbox: SandboxSpec, args: list[str], name: str, cwd: Path,
                 files: RunFiles, reactor: Reactor) -> None:
        super().__init__(cli, config, files, reactor)
        self.sandbox = sandbox
        self.args = args
        self.name = name
        self.image = sandbox.image
        self.cwd = cwd
        self.spawned: Spawned | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Launched:
        """Helper thread: ``docker create`` (pulling if allowed), then the attached client, which the wrapper
        starts only once :meth:`release` is called (after the runner persisted the run). The sandbox is
        validated again first: a spec that no longer passes (a mount source swapped for a symlink since the
        submit, or a spec stored before the rule it breaks) fails the run, and no container is created."""
        check_sandbox_again(self.config, self.sandbox)
        container_id = self.cli.create(self.args, self.name, self.image)
        self.container_id = container_id
        spec = ProcessSpec(argv=(self.cli.resolve(), "start", "--attach", container_id), env=self.cli.env, cwd=self.cwd)
        try:
            self.spawned = spawn(spec, self.files, self.config.wrapper_argv, self.config.kill_grace_seconds)
        except BaseException:
            self.cli.remove_quietly(container_id)
            raise
        self.popen = self.spawned.popen
        self.pid = self.popen.pid
        return Launched(pid=self.pid, pid_start_ticks=start_ticks(self.pid), container_id=container_id)

    def release(self) -> None:
        assert self.spawned is not None
        self.spawned.release()

    def stop(self, force: bool) -> None:
        if self.spawned is not None:
            self.spawned.abandon()  # not released yet: the client never starts the container
        super().stop(force)

    def watch(self, on_exit: Callable[[], None]) -> None:
        assert self.popen is not None
        popen = self.popen
        self.reactor.watch_exit(
            popen.pid, lambda: _in_background("container-end", self._reap_then, popen, on_exit)
        )

    def _reap_then(self, popen: subprocess.Popen[bytes], on_exit: Callable[[], None]) -> None:
        self._conclude_then(popen.wait(), on_exit)  # the client has exited: wait() only reaps it


class AdoptedContainerLauncher(_ContainerRun):
    """A sandbox run started by an earlier runner process: watched, stopped and removed, never started again.

    If the attached client (under its wrapper) still runs, its exit is watched, and the output keeps flowing to
    the run's files. If the client is gone but the container still runs, a ``docker wait`` process is watched
    instead (output printed from then on is not captured). If both are gone, the run is concluded at once.
    """

    def __init__(self, cli: DockerCli, config: Config, record: TaskRecord, alive: bool, files: RunFiles,
                 reactor: Reactor) -> None:
        super().__init__(cli, config, files, reactor)
        self.container_id = record.container_id
        self.original_pid = record.pid
        self.pid = record.pid if alive else None
        self.waiter: subprocess.Popen[bytes] | None = None

    def release(self) -> None:
        pass  # started by an earlier runner: nothing to let go

    def start(self) -> Launched:
        if self.pid is None and self.container_id is not None:
            try:
                state = self.cli.inspect_state(self.container_id)
                if state is not None and state.get("Running"):
                    self.waiter = subprocess.Popen(
                        [self.cli.resolve(), "wait", "--", self.container_id], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.cli.env, close_fds=True,
                    )
            except (DockerError, OSError) as exc:
                logger.warning("cannot watch container %s after a restart: %s", self.container_id, exc)
        return Launched(pid=self.original_pid, container_id=self.container_id)

    def watch(self, on_exit: Callable[[], None]) -> None:
        if self.pid is not None:
            self.reactor.watch_exit(self.pid, lambda: _in_background("container-end", self._conclude_then, None,
                                                                     on_exit))
        elif self.waiter is not None:
            waiter = self.waiter
            self.reactor.watch_exit(waiter.pid, lambda: _in_background("container-end", self._reap_then, waiter,
                                                                       on_exit))
        else:
            _in_background("container-end", self._conclude_then, None, on_exit)

    def _reap_then(self, waiter: subprocess.Popen[bytes], on_exit: Callable[[], None]) -> None:
        waiter.wait()
        self._conclude_then(None, on_exit)


def docker_cli(config: Config, environment: Mapping[str, str], request: TaskRequest | None = None) -> DockerCli:
    """A client for ``config``'s docker binary; with ``request``, its environment carries the task's identity and
    prompt, which ``--env NAME`` copies into the container."""
    extra = None
    if request is not None:
        extra = {"HOST_RUNNER_TASK_ID": request.task_id, "HOST_RUNNER_RUN_ID": request.run_id,
                 "HOST_RUNNER_PROMPT": request.prompt}
    return DockerCli(config.docker.binary, client_environment(environment, extra), config.docker.timeout_seconds)


def container_launcher(config: Config, request: TaskRequest, cwd: Path, files: RunFiles, reactor: Reactor,
                       environment: Mapping[str, str]) -> ContainerLauncher:
    """The launcher of a new sandbox run; ``cwd`` is the docker client's (private, empty) working directory."""
    assert request.sandbox is not None and config.instance_id is not None
    name = container_name(config.instance_id, request.task_id, request.run_id)
    labels = {LABEL_TASK: request.task_id, LABEL_RUN: request.run_id, LABEL_INSTANCE: config.instance_id}
    args = create_args(config.docker, request.sandbox, name, labels)
    return ContainerLauncher(docker_cli(config, environment, request), config, request.sandbox, args, name, cwd,
                             files, reactor)


def check_sandbox_again(config: Config, sandbox: SandboxSpec) -> None:
    """Validate a stored sandbox by today's rules and settings just before ``docker create``
    (:func:`host_runner.domain.sandbox_spec.check_again`); :class:`LaunchError` saying why if it no longer passes."""
    try:
        check_again(sandbox, config.docker.mount_roots, config.data_dir)
    except ValidationError as exc:
        raise LaunchError(f"sandbox refused when checked again before creating its container (none was "
                          f"created): {exc}") from None


def adopted_container_launcher(config: Config, record: TaskRecord, alive: bool, files: RunFiles, reactor: Reactor,
                               environment: Mapping[str, str]) -> AdoptedContainerLauncher:
    return AdoptedContainerLauncher(docker_cli(config, environment), config, record, alive, files, reactor)
