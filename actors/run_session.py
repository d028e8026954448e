"""What a run is made of besides its process: its phases, its services, and the session plugged into it.

A :class:`~actors.task.TaskActor` drives every run the same way (start, watch, time out, cancel, end, clean up,
record). What an executor adds on top (the agent executor: following its output frames, its IPC inbox, its
idle and close timers, draining its last frames, its run log) is a :class:`RunSession` the TaskActor is
composed with. The supervisor picks the session where it starts the actor; a plain run gets this module's
:class:`RunSession`, whose extension points all keep the TaskActor's own behaviour.

A session sees its run through :class:`Run` (a few attributes and four actions of the TaskActor) and runs in
the actor's thread: its ``@handles`` methods are routed by the actor's dispatch table (:meth:`Actor.route_to`).
"""

from __future__ import annotations

import enum
import logging
import os
from datetime import datetime, timezone
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from actors.journal import Journal
from host_runner.domain.record import TaskRecord
from host_runner.domain.request import TaskRequest
from host_runner.domain.limits import CgroupUsage, TaskLimits, format_size
from host_runner.ops.config import Config
from host_runner.run.launchers import Launcher
from host_runner.executors import executor_named
from host_runner.modes import mode_of
from host_runner.run.commands import LaunchError
from host_runner.run.process_group import ExitStatus, RunFiles, signal_name, start_ticks
from host_runner.run.reactor import Reactor
from host_runner.store.sqlite import Store
from host_runner.workspace.interface import Workspace


__all__ = [
    "Conclusion", "Phase", "Run", "RunSession", "SessionFactory", "TaskServices", "after_run_work", "describe_exit",
    "exit_conclusion", "make_launcher", "out_of_memory", "parse_utc", "reason_fields",
]

logger = logging.getLogger(__name__)

#: How the message of a run the OOM killer ended begins.
OOM_MESSAGE = "out of memory: killed"

#: Status, message, exit code and reason of a run that ended: the reason is the record's ``failure_reason`` of a
#: failed run (host_runner.domain.record.FAILURE_REASONS), its ``cancel_reason`` if canceled, None on success.
Conclusion = tuple[str, str, int | None, str | None]


def reason_fields(status: str, reason: str | None) -> dict[str, Any]:
    """The record fields that say why a run ended: ``failure_reason`` when it failed (``lost`` when nobody said
    why), ``cancel_reason`` when it was canceled; none on success."""
    if status == "failed":
        return {"failure_reason": reason or "lost"}
    if status == "canceled":
        return {"cancel_reason": reason or "api"}
    return {}


def parse_utc(value: str) -> float:
    """A record's timestamp (``started_at``, ``last_output_at``) as seconds since the epoch."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def describe_exit(outcome: ExitStatus | None) -> Conclusion:
    """Status, message, exit code and failure reason of a run that ended by itself."""
    if outcome is None:
        return "failed", "the process ended without recording an exit status", None, "lost"
    if outcome.error:  # the command could not be started (not found, not executable): the run's setup failed
        return "failed", outcome.error, outcome.exit_code, "setup"
    if outcome.exit_code == 0:
        return "success", "completed", 0, None
    if outcome.signal:
        return "failed", f"killed by {signal_name(outcome.signal)}", outcome.exit_code, "exit_code"
    return "failed", f"exited with code {outcome.exit_code}", outcome.exit_code, "exit_code"


class Phase(enum.Enum):
    """Where a TaskActor is in its run. The values are what /debug/actors, the dashboard and the CLI show."""

    STARTING = "starting"  # workspace prepared and process started in a helper thread
    RUNNING = "running"  # the reactor tells the actor when the process exits or the timeout passes
    DRAINING = "draining"  # the process exited; the session still reads what it left (the agent's last frames)
    ENDING = "ending"  # workspace cleaned (and the session's after-run work done) in a helper thread
    RECORDING = "recording"  # the end is known but the store cannot be written yet: retried
    DONE = "done"


@dataclass(frozen=True)
class TaskServices:
    """What every TaskActor needs from the rest of the system."""

    config: Config
    store: Store
    reactor: Reactor
    supervisor: pykka.ActorRef[Any]
    journal: Journal
    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: The WorktreeRegistryActor, asked by the lock check of a shared-workspace run (actors/lock_verdict.py).
    registry: pykka.ActorRef[Any] | None = None


class Run(Protocol):
    """The TaskActor as its session sees it. The session reads these and changes the run only through the
    four methods, so the TaskActor stays the one owner of its phase, timers and record."""

    record: TaskRecord
    request: TaskRequest
    services: TaskServices
    files: RunFiles
    adopt: bool
    phase: Phase
    cancel_message: str | None
    timed_out: bool
    internal_error: bool

    @property
    def actor_ref(self) -> pykka.ActorRef[Any]: ...

    def tell_later(self, message: Any) -> Callable[[], None]: ...

    def commit(self, record: TaskRecord, events: Sequence[Mapping[str, Any]] | None = None,
               progress: Sequence[Mapping[str, Any]] = ()) -> None:
        """Make ``record`` the run's record and commit it through the journal (see :meth:`Journal.commit`)."""

    def arm_timeout(self, delay: float) -> None:
        """The run fails if it is still running ``delay`` seconds from now."""

    def terminate(self) -> None:
        """Stop the process (TERM, then KILL after the grace period)."""

    def conclude(self) -> None:
        """End the run now, from how its process exited (after the session's draining)."""


class RunSession:
    """The default session, a plain run's: every extension point keeps the TaskActor's own behaviour.

    Subclasses override the points they need and may add ``@handles`` methods for their own messages.
    Every method runs in the actor's thread, except :meth:`launcher` and the work :meth:`after_run` returns.
    """

    def __init__(self, run: Run) -> None:
        self.run = run

    def remaining_timeout(self, default: float) -> float:
        """Seconds left of the timeout when the run starts running (``default``: counted from its start)."""
        return default

    def on_running(self) -> None:
        """The process is running and watched."""

    def after_exit(self, outcome: ExitStatus | None) -> bool:
        """The process exited and was reaped (its timers are cancelled). True: conclude now; False: the session
        is still draining and calls :meth:`Run.conclude` when it is done."""
        return True

    def conclusion(self, outcome: ExitStatus | None, default: Conclusion) -> Conclusion:
        """Status, message, exit code and reason of the run; ``default`` is the TaskActor's own verdict."""
        return default

    def on_ending(self) -> None:
        """The run is ending (from any phase, also when it never started)."""

    def final_fields(self) -> dict[str, Any]:
        """Fields the session adds to the terminal record (the ``handoff``, ...), asked for once the run ended."""
        return {}

    def after_run(self, status: str, message: str, exit_code: int | None) -> Callable[[], dict[str, Any]]:
        """Blocking work after the workspace's cleanup, run in a helper thread; returns fields for the record's
        ``extra``. Whatever it needs from the session is taken now, in the actor's thread."""
        return dict

    def on_stop(self) -> None:
        """The actor is stopping (the runner stops): let go of threads; the process is left for adoption."""

    def describe(self) -> dict[str, Any]:
        """What the session adds to the actor's /debug/actors entry."""
        return {}


#: How the supervisor says which session a run gets: the session class (or any callable taking the run).
SessionFactory = Callable[[Run], RunSession]


def after_run_work(workspace: Workspace | None, session: RunSession, status: str, message: str,
                   exit_code: int | None, checks: Callable[[], dict[str, Any]] = dict,
                   launcher: Launcher | None = None) -> Callable[[], dict[str, Any]]:
    """The blocking work done after a run (in a helper thread): first the launcher's (none of the run's processes
    is left, its cgroup is removed: nothing writes in the workspace any more), then the workspace's cleanup, then
    the session's (asked for here, in the actor's thread), then ``checks`` (the lock check); returns fields for
    the record."""
    finish: Callable[[], dict[str, Any]] = launcher.finish if launcher is not None else dict
    cleanup: Callable[[], dict[str, Any]] = workspace.cleanup if workspace is not None else dict
    after_run = session.after_run(status, message, exit_code)

    def work() -> dict[str, Any]:
        try:
            accounting = finish()
        except Exception:  # the workspace is cleaned up all the same; the next start's sweep removes the cgroup
            logger.exception("could not finish the run's processes and cgroup")
            accounting = {}
        return {**cleanup(), **after_run(), **accounting, **checks()}

    return work


def make_launcher(record: TaskRecord, request: TaskRequest, services: TaskServices, files: RunFiles,
                  workspace: Workspace, adopt: bool) -> Launcher:
    """Blocking (a TaskActor's helper thread): the launcher of a run, its workspace prepared; or, when the run is
    re-adopted after a restart, one that watches the process it recorded."""
    config = services.config
    mode = mode_of(request)
    if adopt:
        pid, ticks = record.pid, record.pid_start_ticks
        # The pid alone is not enough: after a reboot or a long downtime it may name another process.
        alive = pid is not None and ticks is not None and start_ticks(pid) == ticks
        return mode.adopted_launcher(config, record, alive, files, services.reactor, services.environment)
    if mode.runs_executor and record.executor not in config.executors_allowed:
        # Queued under another HOST_RUNNER_ALLOWED_EXECUTORS, before a restart: the operator's word now counts.
        raise LaunchError(f"executor {record.executor!r} is not allowed on this runner any more "
                          f"(HOST_RUNNER_ALLOWED_EXECUTORS: {','.join(config.executors_allowed)})")
    files.create()
    cwd = workspace.prepare()
    # A sandbox names its own image and command: HOST_RUNNER_EXECUTOR does not apply to it.
    starter = executor_named(record.executor) if mode.runs_executor else mode
    return starter.launcher(config, request, cwd, files, services.reactor, services.environment)


def exit_conclusion(task: Any, outcome: ExitStatus | None) -> Conclusion:
    """Status, message, exit code and reason of a TaskActor's run, from how it ended (before its session has its
    say): the runner's own doing first (an internal error, the output limit, a cancel, the timeout), then the
    process's."""
    exit_code = outcome.exit_code if outcome else None
    if task.internal_error:  # the runner lost control of the run (it was killed)
        return "failed", "internal error in the runner; see its log", exit_code, "lost"
    if task.output_exceeded:
        return "failed", task.cancel_message or "output limit exceeded", exit_code, "output_limit"
    if task.cancel_message is not None:
        return "canceled", task.cancel_message, exit_code, task.cancel_reason
    if task.timed_out:
        return "failed", f"timed out after {task.record.timeout_seconds:g} s", exit_code, "timeout"
    if task.adopt and outcome is None:
        return "failed", "lost: runner restarted and the process was gone", None, "lost"
    limits = task.services.config.task_limits.within(task.request.limits)
    return out_of_memory(task.usage, outcome, limits) or describe_exit(outcome)


def out_of_memory(usage: CgroupUsage | None, outcome: ExitStatus | None, limits: TaskLimits) -> Conclusion | None:
    """A run that failed after its cgroup's OOM killer acted ends ``failed`` naming the memory limit, with
    ``failure_reason: oom``; None when memory was not why it ended (a command that survived the OOM kill of one
    of its children and exited 0 succeeded)."""
    if usage is None or not usage.oom_kills or outcome is None or outcome.exit_code == 0:
        return None
    limit = f" ({format_size(limits.memory)})" if limits.memory else ""
    return "failed", f"{OOM_MESSAGE} at the task's memory limit{limit}", outcome.exit_code, "oom"
