"""The TaskActor: owns one run from workspace preparation to the terminal record.

Phases (:class:`~actors.run_session.Phase`): starting (workspace prepared and process started in a helper
thread) → running (the reactor tells us when the process exits or the timeout passes) → draining (only while
the session reads what the process left) → ending (workspace cleaned in a helper thread) → done. The inbox
never waits on anything, so a cancel is handled in every phase. Each transition is committed through the
:class:`~actors.journal.Journal` before the supervisor and the CallbackActor hear of it. What an executor adds
to a run (agent frames, inbox and timers; an agent CLI's events) is its session (:mod:`actors.run_session`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.base import Actor, handles
from actors.lock_verdict import cleaned_up, lock_check_work
from actors.messages import Cancel, ClaimsFreed, TaskEnded
from actors.preparing import STARTING_STOP_WAIT_SECONDS, with_marker, without_marker
from actors.run_session import (Phase, RunSession, SessionFactory, TaskServices, after_run_work,
                                describe_exit, exit_conclusion, make_launcher, parse_utc, reason_fields)
from actors.task_messages import (CleanedUp, Exited, KillNow, OutputExceeded, RetryRecord, Started, TimedOut,
                                  tell_output_exceeded)
from host_runner.domain.errors import StoreUnavailable
from host_runner.domain.limits import CgroupUsage
from host_runner.domain.record import TaskRecord, utc_now
from host_runner.domain.request import TaskRequest
from host_runner.modes import mode_of
from host_runner.ops.runner_log import bind_log_context
from host_runner.run.commands import LaunchError
from host_runner.run.launchers import Launcher
from host_runner.run.output_limit import OutputWatch
from host_runner.run.process_group import ExitStatus, RunFiles, read_tail
from host_runner.run.reactor import Timer
from host_runner.workspace.interface import Workspace, WorkspaceError

__all__ = ["Phase", "TaskActor", "TaskServices", "describe_exit"]

logger = logging.getLogger(__name__)

#: Retrying the terminal record while the store cannot be written (a full disk): first and longest delay.
RECORD_RETRY_FIRST_SECONDS = 0.5
RECORD_RETRY_MAX_SECONDS = 10.0


class TaskActor(Actor):
    """One run of one task. Started by the SupervisorActor; stops itself once it told it :class:`TaskEnded`."""

    #: Daemon threads: Python keeps a lock per live non-daemon thread and walks them all at each thread start,
    #: which with thousands of running tasks made starting one cost more the more were running. The runner stops
    #: its actors itself (worker_exit); the interpreter's exit must not wait for them anyway.
    use_daemon_thread = True

    def __init__(self, record: TaskRecord, request: TaskRequest, services: TaskServices, *, adopt: bool = False,
                 session: SessionFactory = RunSession, holds_claims: bool = True) -> None:
        super().__init__()
        self.record = record
        self.request = request
        self.services = services
        self.files = RunFiles(Path(record.log_dir or "."))
        self.workspace: Workspace | None = None
        self.launcher: Launcher | None = None
        self.adopt = adopt
        self.holds_claims = holds_claims  # in the worktree registry: freed (ClaimsFreed) as soon as the run ends
        self.phase = Phase.STARTING
        self.cancel_message: str | None = None  # set once the run is being stopped like a cancel
        self.internal_error = False  # a handler failed while the process ran: it was killed, the task fails
        self.timed_out = False
        self.output_exceeded = False  # stopped like a cancel (cancel_message says why), but the run fails
        self.cancel_reason = "api"  # the record's cancel_reason (api, shutdown) once cancel_message is set
        self.timers: list[Timer | OutputWatch] = []  # all cancelled when the process exits
        self.timeout_timer: Timer | None = None
        self.timeout_deadline = 0.0  # time.monotonic() value; may move later while its timer is pending
        self.wait_for_start: Callable[[float], Any] | None = None
        self.abandoned = threading.Event()  # the runner stopped while preparing: the helper starts nothing more
        self.record_retry_delay = RECORD_RETRY_FIRST_SECONDS
        self.exit_outcome: ExitStatus | None = None
        self.usage: CgroupUsage | None = None  # what the run's cgroup counted when its process exited
        self.session = session(self)  # last: it may read what is set above
        self.route_to(self.session)

    # --- starting -------------------------------------------------------------------------------------------
    def on_start(self) -> None:  # this thread serves this run only: all it logs is about this task
        bind_log_context(task_id=self.record.task_id, run_id=self.record.run_id)
        marked = None if self.adopt else with_marker(self.record, self.request)
        if marked is not None:  # persisted before anything is made: the next start cleans up what a stop left
            try:
                self.commit(marked, events=())
            except StoreUnavailable as exc:
                self._end("failed", f"not started: {exc}", None, "setup")
                return
        self.wait_for_start = self.in_background(self._prepare_and_start, self._started)

    def on_stop(self) -> None:
        """The runner is stopping. A running process is left running for the next runner to adopt; one being
        started right now is waited for and recorded as running, so that it is adopted, not started twice."""
        if self.phase is Phase.STARTING and self.wait_for_start is not None:
            started = self.wait_for_start(STARTING_STOP_WAIT_SECONDS)
            if started is None:  # still preparing: left to the next start, which cleans up and queues it again
                self.abandoned.set()
                logger.info("task %s was still being prepared; the next start queues it again", self.record.task_id)
            else:
                self._on_started(started)
        self.session.on_stop()

    @staticmethod
    def _started(result: Started | None, error: BaseException | None) -> Started:
        return result if result is not None else Started(None, None, None, error)

    def _prepare_and_start(self) -> Started:
        """Helper thread: the blocking part of starting (directories, workspace, fork/exec).

        The workspace travels back in the message even when a later step fails (a worktree was created, then
        the command was not found): the actor must clean up that very workspace, and only the actor sets
        its own attributes.
        """
        workspace: Workspace | None = None
        try:
            workspace = self._workspace()
            launcher = make_launcher(self.record, self.request, self.services, self.files, workspace, self.adopt)
            if self.abandoned.is_set():  # the runner stopped meanwhile: start nothing it could not watch
                raise LaunchError("not started: the runner stopped while preparing the run")
            return Started(workspace, launcher, launcher.start(), None)
        except Exception as exc:
            return Started(workspace, None, None, exc)

    def _workspace(self) -> Workspace:
        return mode_of(self.request).workspace(self.request, self.files,
                                               cleanup_worktree=self.services.config.cleanup_worktree,
                                               prepared=self.record.extra)

    @handles(Started)
    def _on_started(self, message: Started) -> None:
        self.workspace = message.workspace
        if message.error is not None or message.launcher is None or message.launched is None:
            error = message.error
            if isinstance(error, (LaunchError, WorkspaceError)):
                text = str(error)
            elif isinstance(error, OSError):
                text = f"cannot start the task: {error.strerror or error}"
            else:
                logger.error("task %s failed to start", self.record.task_id, exc_info=error)
                text = "internal error while starting the task; see the runner log"
            self._end("failed", text, None, "setup")
            return
        launched = message.launched
        if not self.adopt and self.cancel_message is not None:
            # Canceled while starting (a slow hook, image pull or `docker create`): never released, so the
            # command never runs; the wrapper exits at once, a container is removed, a cgroup as the run ends.
            self.launcher = message.launcher
            self.launcher.stop(force=True)
            self._end("canceled", self.cancel_message, None, self.cancel_reason)
            return
        self.launcher = message.launcher
        if not self.adopt:
            prepared = self.workspace.record_fields() if self.workspace is not None else {}
            try:
                self.transition(
                    status="running", message="running", started_at=utc_now(), pid=launched.pid,
                    pid_start_ticks=launched.pid_start_ticks, container_id=launched.container_id,
                    extra={**without_marker(self.record.extra), **prepared},
                )
            except StoreUnavailable as exc:
                # Not released, so the command never runs: a run the store does not know of must not exist.
                logger.warning("task %s not started: %s", self.record.task_id, exc)
                self.launcher.stop(force=True)
                self._end("failed", f"not started: {exc}", None, "setup")
                return
        # Only now, with the pid on disk, may the command begin: a runner killed before this point leaves a
        # wrapper that exits without running anything, and the task is queued again on restart.
        self.launcher.release()
        self.phase = Phase.RUNNING
        self.launcher.watch(self.tell_later(Exited()))
        self.arm_timeout(self.session.remaining_timeout(self._remaining_timeout()))
        self.timers.append(OutputWatch(self.services.reactor, self.files, self.services.config.max_output_bytes,
                                       tell_output_exceeded(self.actor_ref)).start())
        self.session.on_running()
        if self.cancel_message is not None:  # a cancel arrived while an adopted run was being watched again
            self.terminate()

    def arm_timeout(self, delay: float) -> None:
        """(Re)start the timeout: the run fails if it is still running ``delay`` seconds from now.

        Moving the deadline does not replace the pending timer (which would leave a cancelled timer in the
        reactor for the whole timeout, each time): when the timer fires early, it is set again for the rest.
        """
        self.timeout_deadline = time.monotonic() + delay
        if self.timeout_timer is None:
            self.timeout_timer = self.services.reactor.call_later(delay, self.tell_later(TimedOut()))

    def _remaining_timeout(self) -> float:
        if not self.adopt or not self.record.started_at:
            return self.record.timeout_seconds
        return max(0.0, self.record.timeout_seconds - (time.time() - parse_utc(self.record.started_at)))

    # --- running ---------------------------------------------------------------------------------------------
    @handles(Cancel)
    def on_cancel(self, message: Cancel) -> None:
        if self.phase not in (Phase.STARTING, Phase.RUNNING) or self.cancel_message is not None or self.timed_out:
            return
        self.cancel_message, self.cancel_reason = message.message, message.reason
        if self.phase is Phase.RUNNING:
            self.terminate()

    @handles(TimedOut)
    def _on_timed_out(self, message: TimedOut) -> None:
        self.timeout_timer = None
        remaining = self.timeout_deadline - time.monotonic()
        if remaining > 0 and self.phase is Phase.RUNNING:  # the deadline moved since the timer was set
            self.timeout_timer = self.services.reactor.call_later(remaining, self.tell_later(TimedOut()))
            return
        if self.phase is Phase.RUNNING and self.cancel_message is None and not self.timed_out:
            self.timed_out = True
            self.terminate()

    @handles(OutputExceeded)
    def _on_output_exceeded(self, message: OutputExceeded) -> None:
        if self.phase is Phase.RUNNING and self.cancel_message is None and not self.timed_out:
            self.output_exceeded, self.cancel_message = True, message.message  # stopped like a cancel, but fails
            self.terminate()

    def terminate(self) -> None:
        """TERM the run now, KILL it after the grace period (the exit arrives as :class:`Exited`)."""
        assert self.launcher is not None
        grace = self.services.config.kill_grace_seconds
        self.launcher.stop(force=grace <= 0)
        if grace > 0:
            self.timers.append(self.services.reactor.call_later(grace, self.tell_later(KillNow())))

    @handles(KillNow)
    def _on_kill_now(self, message: KillNow) -> None:
        if self.phase is Phase.RUNNING and self.launcher is not None:
            logger.info("task %s ignored SIGTERM for %ss; killing its group", self.record.task_id,
                        self.services.config.kill_grace_seconds)
            self.launcher.stop(force=True)

    @handles(Exited)
    def _on_exited(self, message: Exited) -> None:
        if self.phase is not Phase.RUNNING or self.launcher is None:
            return
        for timer in self.timers:
            timer.cancel()
        if self.timeout_timer is not None:
            self.timeout_timer.cancel()
        self.exit_outcome = self.launcher.outcome()
        if self.cancel_message is None and not self.timed_out and (self.exit_outcome is None or
                                                                   self.exit_outcome.exit_code != 0):
            # Read for the out-of-memory verdict only, which neither a run that succeeded nor a stopped one (cancel,
            # timeout, output limit, internal error) gets: they skip the counter files here; their end reads them.
            self.usage = self.launcher.usage()
        self.launcher.after_exit()
        if self.session.after_exit(self.exit_outcome):
            self.conclude()
        else:  # the session reads what the process left first (the last frame may decide the status)
            self.phase = Phase.DRAINING

    def conclude(self) -> None:
        """End the run with the status its exit (and its session) decide."""
        outcome = self.exit_outcome
        self._end(*self.session.conclusion(outcome, exit_conclusion(self, outcome)))

    # --- ending ----------------------------------------------------------------------------------------------
    def _end(self, status: str, message: str, exit_code: int | None, reason: str | None = None) -> None:
        self.phase = Phase.ENDING
        self.session.on_ending()
        if self.cancel_message is not None and status == "failed" and self.launcher is None:
            status, message, reason = "canceled", self.cancel_message, self.cancel_reason
        fields = self.session.final_fields()
        try:
            workspace: Workspace | None = self.workspace or self._workspace()
        except WorkspaceError:  # a mode this runner cannot handle: nothing was prepared, nothing to clean
            workspace = None
        self.in_background(after_run_work(workspace, self.session, status, message, exit_code,
                                          lock_check_work(self, workspace), self.launcher),
                           cleaned_up(self.services.config, status, message, exit_code, fields, reason))

    @handles(CleanedUp)
    def _on_cleaned_up(self, message: CleanedUp) -> None:
        self.phase = Phase.DONE
        if self.holds_claims:
            self.services.supervisor.tell(ClaimsFreed(self.record.key))
        try:
            self.transition(
                status=message.status, message=message.message, exit_code=message.exit_code,
                finished_at=utc_now(), stdout=read_tail(self.files.readable_stdout),
                stderr=read_tail(self.files.stderr),
                extra={**without_marker(self.record.extra), **message.fields,
                       **reason_fields(message.status, message.reason)},
            )
        except StoreUnavailable as exc:
            # Nothing is lost: the end stays in memory (the slot stays taken) and is written once it can be.
            self.phase = Phase.RECORDING
            logger.warning("task %s ended %s but %s; retrying", self.record.task_id, message.status, exc)
            self._retry_record_later()
            return
        self._ended()

    def _retry_record_later(self) -> None:
        self.timers.append(self.services.reactor.call_later(self.record_retry_delay, self.tell_later(RetryRecord())))
        self.record_retry_delay = min(self.record_retry_delay * 2, RECORD_RETRY_MAX_SECONDS)

    @handles(RetryRecord)
    def _on_retry_record(self, message: RetryRecord) -> None:
        if self.phase is not Phase.RECORDING:
            return
        try:
            self.commit(self.record)
        except StoreUnavailable:
            self._retry_record_later()
            return
        logger.info("task %s: its end is recorded now", self.record.task_id)
        self.phase = Phase.DONE
        self._ended()

    def _ended(self) -> None:
        """The terminal record is persisted (and its callback queued): free the supervisor's slot."""
        logger.info("task %s run %s ended %s: %s", self.record.task_id, self.record.run_id, self.record.status,
                    self.record.message)
        self._hand_back()

    def _hand_back(self) -> None:
        """Tell the supervisor the run ended, and stop: this actor's work is done (its thread ends)."""
        self.services.supervisor.tell(TaskEnded(self.record))
        self.stop()

    def on_handler_failure(self, message: Any) -> None:
        """A bug in a handler must not strand a process: stop it and end the task as failed."""
        if self.phase is Phase.DRAINING:  # the process is gone: end with what we have
            exit_code = self.exit_outcome.exit_code if self.exit_outcome else None
            self._end("failed", "internal error in the runner; see its log", exit_code, "lost")
            return
        if self.phase is Phase.RUNNING and self.launcher is not None:
            self.launcher.stop(force=True)
            # Failed, not canceled; and setting cancel_message keeps later cancels and timeouts from acting again.
            self.internal_error = True
            self.cancel_message = self.cancel_message or "internal error in the runner; see its log"
            return  # the exit notification ends the task
        if self.phase in (Phase.STARTING, Phase.RUNNING):
            self._end("failed", "internal error in the runner; see its log", None, "lost")
            return
        # Failing while ending: free the supervisor's slot all the same, with the best record we can keep.
        self.phase = Phase.DONE
        try:
            stored = self.services.store.get(*self.record.key)
            if stored is not None and not stored.active:
                # The end was persisted (and its callback queued) before the failure: keep it as recorded.
                self.record = stored
            else:
                self.record = self.record.evolve(
                    status="failed", message="internal error in the runner; see its log",
                    finished_at=self.record.finished_at or utc_now(),
                    extra={**self.record.extra, "failure_reason": "lost"},
                )
                self.commit(self.record)
        except Exception:
            logger.exception("could not persist the failure of task %s", self.record.task_id)
        self._hand_back()

    def describe(self) -> dict[str, Any]:
        return {
            "task_id": self.record.task_id, "run_id": self.record.run_id, "status": self.record.status,
            "phase": self.phase.value, "executor": self.record.executor, "pid": self.record.pid,
            "container_id": self.record.container_id, "started_at": self.record.started_at,
            "timeout_seconds": self.record.timeout_seconds, "adopted": self.adopt, "timed_out": self.timed_out,
            "cancel_requested": self.cancel_message is not None, **self.session.describe(),
        }

    # --- bookkeeping -----------------------------------------------------------------------------------------
    def transition(self, **changes: Any) -> None:
        """Apply ``changes`` to the record and commit it, with its status callback event."""
        self.commit(self.record.evolve(**changes))

    def commit(self, record: TaskRecord, events: Sequence[Mapping[str, Any]] | None = None,
               progress: Sequence[Mapping[str, Any]] = ()) -> None:
        """Make ``record`` the run's record and commit it through the journal (see :meth:`Journal.commit`)."""
        self.record, url = record, self.request.status_callback_url
        self.services.journal.commit(record, url, events, progress=progress,  # progress: to the URL when asked
                                     progress_url=url if "progress" in self.request.status_callback_events else None)

