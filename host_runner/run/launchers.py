"""Launchers start, watch and stop what a task runs: a process group, an adopted process group, or nothing (mock).

The TaskActor drives a launcher in four steps: ``start`` (may block briefly; called from a helper thread),
``watch`` (registers the exit notification; called from the actor), ``stop`` (never blocks) and, once the
exit was notified, ``outcome``, ``usage`` and ``after_exit``; ``finish`` (blocking, in the ending helper thread)
waits until nothing of the run is left and returns its accounting.

Cgroups (host_runner.limits): a host run gets its cgroup here, in ``ProcessLauncher.start``. The runner makes the
cgroup and moves the wrapper into it before it writes "go", rather than the wrapper joining it itself: the wrapper
is stopped on its pipe until then, so nothing of the command has run outside the cgroup; wrapper.c and wrapper.py
stay as they are (one protocol, nothing to keep in step); and the cgroup's name comes from the task and run ids
alone, so a restarted runner finds it again (re-adoption) without anything the wrapper would have to record.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from host_runner.domain.limits import CgroupRequest, CgroupUsage, TaskCgroup
from host_runner.run.commands import LaunchError

from host_runner.run.process_group import (
    ExitStatus,
    ProcessSpec,
    RunFiles,
    Spawned,
    read_exit_status,
    spawn,
    start_ticks,
)
from host_runner.run.reactor import Reactor, Timer
from host_runner.run.stopping import group_alive, signal_group, signal_tree

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launched:
    """What identifies a started run: the process group leader (and its start time), or a container."""

    pid: int | None = None
    pid_start_ticks: int | None = None
    container_id: str | None = None


class Launcher(Protocol):
    def start(self) -> Launched: ...

    def release(self) -> None:
        """Let the started run actually begin; called once its identity has been persisted."""

    def watch(self, on_exit: Callable[[], None]) -> None: ...

    def stop(self, force: bool) -> None: ...

    def outcome(self) -> ExitStatus | None: ...

    def usage(self) -> CgroupUsage | None:
        """What the run's cgroup counted so far (None: it has none)."""

    def after_exit(self) -> None: ...

    def finish(self) -> dict[str, Any]:
        """Blocking (a helper thread): once the run ended, wait until none of its processes is left, then remove
        what held them; returns fields for the record (the cgroup's accounting)."""


class _GroupLauncher:
    """Common part of launchers whose run is a process group led by the wrapper."""

    #: After the run ended, the longest ``finish`` waits for its cgroup to empty once everything in it was killed.
    EMPTY_WAIT_SECONDS = 10.0

    def __init__(self, files: RunFiles, reactor: Reactor, kill_grace: float) -> None:
        self.files = files
        self.reactor = reactor
        self.kill_grace = kill_grace
        self.pid: int | None = None
        self.cgroup: TaskCgroup | None = None

    def release(self) -> None:
        pass

    def usage(self) -> CgroupUsage | None:
        return self.cgroup.usage() if self.cgroup is not None else None

    def finish(self) -> dict[str, Any]:
        """TERM was sent to what outlived the command (:meth:`after_exit`); KILL the rest after the grace period
        (the whole cgroup: also processes the wrapper could not see), then remove the cgroup."""
        cgroup = self.cgroup
        if cgroup is None:
            return {}
        started = time.monotonic()
        pause = 0.001  # the exited wrapper leaves the cgroup's list within a millisecond or so: look again soon
        while cgroup.pids():
            waited = time.monotonic() - started
            if waited >= self.kill_grace + self.EMPTY_WAIT_SECONDS:
                logger.error("task cgroup %s still has processes %s; left for the next start's sweep", cgroup.name,
                             cgroup.pids())
                return cgroup.usage().record_fields()
            if waited >= self.kill_grace:
                cgroup.kill()  # again on each pass: also what was forked while the last kill ran
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        fields = cgroup.usage().record_fields()
        if not cgroup.remove():
            logger.warning("task cgroup %s could not be removed; the next start's sweep removes it", cgroup.name)
        return fields

    def watch(self, on_exit: Callable[[], None]) -> None:
        assert self.pid is not None
        self.reactor.watch_exit(self.pid, on_exit)

    def stop(self, force: bool) -> None:
        if self.pid is not None:
            signum = signal.SIGKILL if force else signal.SIGTERM
            if self.cgroup is not None:
                # The cgroup below lists every process of the run, also a daemon that left the group with setsid
                # (children inherit the cgroup): the walk of /proc that finds those is left out here, it was a
                # third of a cancel's reads (issue 22).
                signal_group(self.pid, signum)
            else:  # the tree, not only the group: a daemon that left the group with setsid is stopped too
                signal_tree(self.pid, signum)
        if self.cgroup is not None:  # and everything in the cgroup, also what the wrapper cannot see
            if force:
                self.cgroup.kill()
            else:
                self.cgroup.signal(signal.SIGTERM)

    def after_exit(self) -> None:
        """Stop what the command left running in its group (background children): TERM now, KILL after grace.
        With a cgroup, TERM everything left in it; :meth:`finish` kills the rest."""
        if self.cgroup is not None:
            self.cgroup.signal(signal.SIGTERM)
        pgid = self.pid
        if pgid is None or not group_alive(pgid):
            return
        logger.info("process group %d outlived its command; stopping it", pgid)
        signal_group(pgid, signal.SIGTERM)
        self.reactor.call_later(self.kill_grace, lambda: signal_group(pgid, signal.SIGKILL))

    def _recorded_outcome(self, returncode: int | None) -> ExitStatus | None:
        recorded = read_exit_status(self.files.exit_status)
        if recorded is not None:
            return recorded
        if returncode is not None and returncode < 0:  # the wrapper itself was killed (SIGKILL after grace)
            return ExitStatus(exit_code=128 - returncode, signal=-returncode)
        return None


class ProcessLauncher(_GroupLauncher):
    """Starts the task's command under the wrapper, in a new session."""

    def __init__(self, spec: ProcessSpec, files: RunFiles, reactor: Reactor, kill_grace: float,
                 wrapper: tuple[str, ...] | None = None, cgroup: CgroupRequest | None = None) -> None:
        super().__init__(files, reactor, kill_grace)
        self.spec = spec
        self.wrapper = wrapper
        self.spawned: Spawned | None = None
        self.cgroup_request = cgroup

    def start(self) -> Launched:
        request = self.cgroup_request
        if request is not None:  # made first: a run that cannot get its cgroup never starts anything
            try:
                self.cgroup = request.tree.create(request.name, request.limits)
            except (OSError, KeyError) as exc:
                raise LaunchError(f"cannot create the task's cgroup: {exc}") from None
        try:
            self.spawned = spawn(self.spec, self.files, self.wrapper, self.kill_grace)
        except BaseException:
            if self.cgroup is not None:
                self.cgroup.remove()
            raise
        self.pid = self.spawned.popen.pid
        if self.cgroup is not None:
            try:  # the wrapper waits for "go" (written only after this), so nothing ran outside the cgroup
                self.cgroup.add(self.pid)
            except OSError as exc:
                self.spawned.abandon()
                self.spawned.popen.wait()
                self.cgroup.remove()
                raise LaunchError(f"cannot move the task into its cgroup: {exc}") from None
        return Launched(pid=self.pid, pid_start_ticks=start_ticks(self.pid))

    def release(self) -> None:
        assert self.spawned is not None
        self.spawned.release()

    def stop(self, force: bool) -> None:
        if self.spawned is not None:
            self.spawned.abandon()  # if it was never released, the wrapper exits without running anything
        super().stop(force)

    def outcome(self) -> ExitStatus | None:
        assert self.spawned is not None
        returncode = self.spawned.popen.wait()  # reaps the wrapper; it has exited, so this does not block
        recorded = self._recorded_outcome(returncode)
        if recorded is None and returncode is not None and returncode >= 0:
            # No status file (the disk was full when the wrapper wrote it): the wrapper exits with the
            # command's code, so that is still known.
            return ExitStatus(exit_code=returncode)
        return recorded


class AdoptedLauncher(_GroupLauncher):
    """A run started by an earlier runner process: watched if it still runs, never started again.

    ``alive`` is False when the process is gone (or its pid now belongs to another process, which must never
    be signalled): then the exit is reported at once and the wrapper's status file says how it ended.
    """

    def __init__(self, pid: int | None, alive: bool, files: RunFiles, reactor: Reactor, kill_grace: float,
                 cgroup: CgroupRequest | None = None) -> None:
        super().__init__(files, reactor, kill_grace)
        self.pid = pid if alive and pid else None
        self.original_pid = pid
        # Found by name: whatever the run left in it is stopped and accounted for like a run of this runner's.
        self.cgroup = cgroup.tree.find(cgroup.name) if cgroup is not None else None

    def start(self) -> Launched:
        return Launched(pid=self.original_pid)

    def watch(self, on_exit: Callable[[], None]) -> None:
        if self.pid is None:
            self.reactor.call_later(0, on_exit)
        else:
            super().watch(on_exit)

    def outcome(self) -> ExitStatus | None:
        return self._recorded_outcome(None)  # not our child: init reaps it, the wrapper's file tells us


class MockLauncher:
    """The ``mock`` executor: prints the prompt and 'exits' 0 after a short delay; no process at all."""

    def __init__(self, prompt: str, files: RunFiles, reactor: Reactor, seconds: float) -> None:
        self.prompt = prompt
        self.files = files
        self.reactor = reactor
        self.seconds = seconds
        self.timer: Timer | None = None
        self.on_exit: Callable[[], None] | None = None
        self.stopped = False

    def start(self) -> Launched:
        self.files.stdout.write_text(self.prompt)
        return Launched()

    def release(self) -> None:
        pass

    def watch(self, on_exit: Callable[[], None]) -> None:
        self.on_exit = on_exit
        self.timer = self.reactor.call_later(self.seconds, on_exit)

    def stop(self, force: bool) -> None:
        if self.stopped or self.timer is None or self.timer.cancelled:
            return
        self.stopped = True
        self.timer.cancel()
        assert self.on_exit is not None
        self.on_exit()

    def outcome(self) -> ExitStatus | None:
        if self.stopped:
            return ExitStatus(exit_code=128 + signal.SIGTERM, signal=signal.SIGTERM)
        return ExitStatus(exit_code=0)

    def usage(self) -> CgroupUsage | None:
        return None

    def after_exit(self) -> None:
        pass

    def finish(self) -> dict[str, Any]:
        return {}
