"""The session of an ``agent`` run: what a TaskActor does on top of a plain run for an agent-runner.

- starts the agent with the protocol's JSON object on stdin and an IPC input dir (:mod:`host_runner.agent.protocol`);
- follows the agent's stdout file in a helper thread (:mod:`host_runner.agent.follower`) and, for each framed result,
  persists it on the record (``outputs``, ``new_session_id``), reports it as an ``output`` callback event and
  restarts the timeout;
- writes follow-up messages and ``_close`` into the IPC directory when the API asks (through the supervisor);
- closes an idle agent: ``HOST_RUNNER_AGENT_IDLE_SECONDS`` after its last non-null result with no message since,
  it writes ``_close``; an agent that has answered everything and still runs ``HOST_RUNNER_AGENT_CLOSE_GRACE_SECONDS``
  after ``_close`` is stopped like any other task (TERM, then KILL). Its hard timeout is never shorter than the idle
  close plus that grace (the supervisor sees to that: ``agent_timeout``), and an agent stopped while it waited with
  every question answered ends ``success``: being closed after answering is how an agent-runner's session ends;
- reads the rest of the output after the process exited before the final status is decided, and writes the
  per-run log file.

Its state survives a runner restart: the read offset and the idle/closing state are kept in the record's
``extra`` (keys starting with ``_`` are not shown by the API), so a re-adopted agent is followed from where the
previous runner stopped reading, without losing or repeating a frame.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from actors.base import handles, tell_if_alive
from actors.messages import AgentInput
from actors.run_session import Conclusion, Phase, Run, RunSession, parse_utc
from actors.task import TaskActor
from host_runner.agent.follower import OutputFollower
from host_runner.agent.frames import Frame, FrameEvent
from host_runner.agent.protocol import AgentFiles, IpcInbox, RunSummary, finish_run
from host_runner.agent_cli.transcript import handoff_for
from host_runner.domain.errors import Conflict, ShuttingDown
from host_runner.domain.record import utc_now
from host_runner.domain.request import agent_group
from host_runner.executors import executor_named
from host_runner.ops.runner_log import task_fields
from host_runner.run.process_group import ExitStatus
from host_runner.run.reactor import Timer
from host_runner.store.outbox import output_fields

__all__ = ["OUTPUTS_KEPT_BYTES", "AgentSession", "AgentTaskActor"]

logger = logging.getLogger(__name__)

#: How much of the frames the record itself keeps (the newest ones; at least the last); all stay in stdout.log.
OUTPUTS_KEPT_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Output:
    """Frames the follower read (told from its thread)."""

    events: list[FrameEvent]


@dataclass(frozen=True)
class _Drained:
    """The follower has stopped for good: it read everything after :meth:`OutputFollower.finish`, or failed."""

    error: BaseException | None


@dataclass(frozen=True)
class _IdleDue:
    """The idle timer fired (the deadline may have moved since it was set)."""


@dataclass(frozen=True)
class _CloseGraceDue:
    """The agent has had its close grace since ``_close`` and its last answer."""


class AgentTaskActor(TaskActor):
    """A TaskActor run with an :class:`AgentSession` (the supervisor gives it one).

    A class of its own only for its name: /debug/actors, the dashboard and the CLI tell agent runs by it.
    """


class AgentSession(RunSession):
    """The agent executor's part of one run. Lives in its TaskActor's thread; state in ``record.extra``."""

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.agent_files = AgentFiles(run.files.directory)
        self.inbox: IpcInbox | None = None
        self.follower: OutputFollower | None = None
        self.drained = False  # the follower has stopped for good (read everything, or failed)
        self.idle_timer: Timer | None = None
        self.idle_deadline = 0.0  # time.monotonic(); moves later with each answer while its timer is pending
        self.close_timer: Timer | None = None
        self.stop_reason: str | None = None  # why the runner stopped an agent that was asked to close
        self.early_input: list[AgentInput] = []  # arrived while starting (a re-adopted run is already "running")
        extra = run.record.extra
        self.group = extra.get("group") or agent_group(run.request)
        self.outputs: deque[dict[str, Any]] = deque(extra.get("outputs", []))
        self.output_sizes: deque[int] = deque(len(json.dumps(output)) for output in self.outputs)
        self.outputs_bytes = sum(self.output_sizes)
        self.frames: int = extra.get("frames", 0)
        self.invalid_frames: int = extra.get("invalid_frames", 0)
        self.closing: bool = extra.get("closing", False)
        self.idle_since: float | None = extra.get("_idle_since")  # when it last answered, if no message since
        self.new_session_id: str | None = extra.get("new_session_id")

    # --- starting ----------------------------------------------------------------------------------------------
    # TaskActor._make_launcher asks the executor (host_runner/executors/agent.py prepares the stdin and IPC files).

    def remaining_timeout(self, default: float) -> float:
        """After a restart the timeout counts from the last output, as it would have without the restart."""
        last = self.run.record.extra.get("last_output_at")
        if not self.run.adopt or not last:
            return default
        return max(0.0, self.run.record.timeout_seconds - (time.time() - parse_utc(last)))

    def on_running(self) -> None:
        ref = self.run.actor_ref
        self.follower = OutputFollower(
            self.run.files.stdout, self.run.record.extra.get("_output_offset", 0),
            on_events=lambda events: tell_if_alive(ref, _Output(events)),
            on_done=lambda error: tell_if_alive(ref, _Drained(error)),
            name=f"follow-{self.run.record.task_id}",
        )
        self.follower.start()
        early, self.early_input = self.early_input, []
        for message in early:
            self.on_agent_input(message)
        if self.run.adopt:  # resume the idle clock or the close grace where the previous runner left them
            if self.closing and self.idle_since is not None:
                self._arm_close_grace()
            elif self.idle_since is not None:
                idle_seconds = self.run.services.config.agent_idle_seconds
                self._arm_idle(max(0.0, idle_seconds - (time.time() - self.idle_since)))

    def on_stop(self) -> None:
        for early in self.early_input:
            early.reply.set_exception(ShuttingDown("the runner is shutting down; send it again after the restart"))
        self.early_input = []
        if self.follower is not None:
            self.follower.stop()  # the next runner resumes reading at the persisted offset

    # --- output ------------------------------------------------------------------------------------------------
    @handles(_Output)
    def on_output(self, message: _Output) -> None:
        if self.follower is not None:
            self.follower.acknowledge()
        if self.run.phase not in (Phase.RUNNING, Phase.DRAINING):
            return
        record = self.run.record
        new_frames: list[tuple[int, dict[str, Any]]] = []
        answered = False
        for event in message.events:
            if not isinstance(event, Frame):
                self.invalid_frames += 1
                logger.warning("task %s run %s: skipped an agent frame ending at byte %d of stdout (%d bytes): %s",
                               record.task_id, record.run_id, event.end_offset, event.size, event.reason,
                               extra=task_fields(record))
                continue
            self.frames += 1
            self._keep_output(event.data)
            new_frames.append((self.frames, event.data))
            session = event.data.get("newSessionId")
            if isinstance(session, str) and session:
                self.new_session_id = session
            if event.data.get("result") is not None:  # null results are session/idle signals, not answers
                answered = True
        if answered:
            self.idle_since = time.time()
        changes: dict[str, Any] = {"_output_offset": message.events[-1].end_offset}
        if new_frames:
            changes["last_output_at"] = utc_now()
        # One transaction: the frames, where to resume reading, and their callback events (so a restart
        # neither loses nor repeats an event).
        self._save_state(new_frames, **changes)
        if not new_frames or not self._accepting_input():
            return
        # Every frame shows the agent is alive: restart the timeout. An answer starts the idle clock.
        self.run.arm_timeout(record.timeout_seconds)
        if answered:
            if self.closing:
                self._arm_close_grace()
            else:
                self._arm_idle(self.run.services.config.agent_idle_seconds)

    def _keep_output(self, output: dict[str, Any]) -> None:
        """Append to the record's outputs, dropping the oldest beyond :data:`OUTPUTS_KEPT_BYTES` (never the last)."""
        self.outputs.append(output)
        self.output_sizes.append(len(json.dumps(output)))
        self.outputs_bytes += self.output_sizes[-1]
        while len(self.outputs) > 1 and self.outputs_bytes > OUTPUTS_KEPT_BYTES:
            self.outputs.popleft()
            self.outputs_bytes -= self.output_sizes.popleft()

    def _save_state(self, new_frames: Sequence[tuple[int, dict[str, Any]]] = (), **changes: Any) -> None:
        """Write the agent's state into the record, with an ``output`` callback event per new frame."""
        record = self.run.record
        extra = {
            **record.extra,
            "group": self.group,
            "outputs": list(self.outputs),
            "frames": self.frames,
            "outputs_dropped": self.frames - len(self.outputs),
            "invalid_frames": self.invalid_frames,
            "new_session_id": self.new_session_id,
            "closing": self.closing,
            "_idle_since": self.idle_since,
            **changes,
        }
        record = record.evolve(extra=extra)
        self.run.commit(record, [output_fields(record, output, index) for index, output in new_frames])

    # --- input -------------------------------------------------------------------------------------------------
    def _accepting_input(self) -> bool:
        run = self.run
        return run.phase is Phase.RUNNING and run.cancel_message is None and not run.timed_out \
            and self.stop_reason is None

    @handles(AgentInput)
    def on_agent_input(self, message: AgentInput) -> None:
        if message.reply.done():
            return
        task_id = self.run.record.task_id
        if self.run.phase is Phase.STARTING and self.run.cancel_message is None:
            self.early_input.append(message)  # answered once the process runs (or fails to start)
            return
        if not self._accepting_input():
            message.reply.set_exception(Conflict(f"task {task_id} is ending and takes no more input"))
            return
        try:
            if message.text is None:
                if not self.closing:
                    self._close()
                message.reply.set_result("_close")
                return
            if self.closing:
                message.reply.set_exception(Conflict(f"task {task_id} was closed and takes no more messages"))
                return
            name = self._get_inbox().put_message(message.text)
        except OSError as exc:
            logger.error("task %s: cannot write to the IPC directory: %s", task_id, exc,
                         extra=task_fields(self.run.record))
            message.reply.set_exception(exc)
            return
        # The agent has work again: it is not idle until its next answer (a pending idle timer finds that out).
        self.idle_since = None
        self._save_state()
        message.reply.set_result(name)

    def _get_inbox(self) -> IpcInbox:
        if self.inbox is None:
            self.inbox = IpcInbox(self.agent_files.ipc_input)
        return self.inbox

    def _close(self) -> None:
        """Write ``_close``; once the agent has answered everything, it must exit within the close grace."""
        self._get_inbox().close()
        self.closing = True
        self._save_state()
        logger.info("task %s: wrote _close for the agent", self.run.record.task_id, extra=task_fields(self.run.record))
        if self.idle_since is not None:
            self._arm_close_grace()

    # --- idle and close timers ------------------------------------------------------------------------------------
    def _arm_idle(self, delay: float) -> None:
        """Close the agent ``delay`` seconds from now unless it gets a message (one pending timer, as for the
        timeout: a moved deadline is honoured when the timer fires)."""
        self.idle_deadline = time.monotonic() + delay
        if self.idle_timer is None:
            self.idle_timer = self.run.services.reactor.call_later(delay, self.run.tell_later(_IdleDue()))

    @handles(_IdleDue)
    def on_idle_due(self, message: _IdleDue) -> None:
        self.idle_timer = None
        if not self._accepting_input() or self.closing or self.idle_since is None:
            return  # ending, already closed, or busy with a message (its answer sets the clock again)
        remaining = self.idle_deadline - time.monotonic()
        if remaining > 0:
            self.idle_timer = self.run.services.reactor.call_later(remaining, self.run.tell_later(_IdleDue()))
            return
        task_id, fields = self.run.record.task_id, task_fields(self.run.record)
        logger.info("task %s: agent idle for %gs; closing it", task_id, self.run.services.config.agent_idle_seconds,
                    extra=fields)
        try:
            self._close()
        except OSError as exc:  # cannot ask politely: stop it
            logger.error("task %s: cannot write _close (%s); stopping the agent", task_id, exc, extra=fields)
            self.stop_reason = f"idle, and _close could not be written ({exc.strerror or exc}): stopped"
            self.run.terminate()

    def _arm_close_grace(self) -> None:
        if self.close_timer is None:
            self.close_timer = self.run.services.reactor.call_later(
                self.run.services.config.agent_close_grace_seconds, self.run.tell_later(_CloseGraceDue())
            )

    @handles(_CloseGraceDue)
    def on_close_grace_due(self, message: _CloseGraceDue) -> None:
        if not self._accepting_input():
            return
        grace = self.run.services.config.agent_close_grace_seconds
        logger.info("task %s: agent still running %gs after _close; stopping it", self.run.record.task_id, grace,
                    extra=task_fields(self.run.record))
        self.stop_reason = f"the agent did not exit within {grace:g} s of _close and was stopped"
        self.run.terminate()

    # --- ending ------------------------------------------------------------------------------------------------
    def after_exit(self, outcome: ExitStatus | None) -> bool:
        """Read the rest of the output first: the last frame may decide the status."""
        for timer in (self.idle_timer, self.close_timer):
            if timer is not None:
                timer.cancel()
        if self.follower is None or self.drained:
            return True
        self.follower.finish()
        return False

    @handles(_Drained)
    def on_drained(self, message: _Drained) -> None:
        self.drained = True
        if message.error is not None:  # frames after this point stay in stdout.log only
            logger.error("task %s: reading the agent's output failed: %s", self.run.record.task_id, message.error,
                         extra=task_fields(self.run.record))
        if self.run.phase is Phase.DRAINING:
            self.run.conclude()

    def on_ending(self) -> None:
        for early in self.early_input:  # the run never got going: nobody will read them
            early.reply.set_exception(Conflict(f"task {self.run.record.task_id} ended before it could take input"))
        self.early_input = []

    def conclusion(self, outcome: ExitStatus | None, default: Conclusion) -> Conclusion:
        run, exit_code = self.run, default[2]
        if run.internal_error or run.cancel_message is not None or (run.adopt and outcome is None):
            return default
        last = self.outputs[-1] if self.outputs else {}  # the newest frame is never dropped
        stopped = self.stop_reason is not None or run.timed_out
        if stopped and self.idle_since is not None and last.get("status") != "error":
            # It answered everything it was asked and was stopped while waiting for more: idle cleanup, as in
            # NanoClaw's host, not a failure.
            grace = self.run.services.config.agent_close_grace_seconds
            how = f"it did not exit within {grace:g} s of _close and was stopped" if self.closing else \
                self.stop_reason or f"stopped at its timeout, {run.record.timeout_seconds:g} s without output"
            idle_for = max(0.0, time.time() - self.idle_since)
            return ("success", f"closed after being idle for {idle_for:.0f} s since its last answer ({how})",
                    exit_code, None)
        if self.stop_reason is not None:  # checked first: a timeout after it is only a consequence
            return "failed", self.stop_reason, exit_code, "timeout"
        if run.timed_out:
            return "failed", f"timed out: no output for {run.record.timeout_seconds:g} s", exit_code, "timeout"
        if last.get("status") == "error":
            error = last.get("error")
            return ("failed", error if isinstance(error, str) and error else "the agent reported an error", exit_code,
                    "agent_error")
        return default

    def after_run(self, status: str, message: str, exit_code: int | None) -> Callable[[], dict[str, Any]]:
        """Drop the input file (it holds the prompt; the store keeps the request) and write the run log."""
        run = self.run
        config = run.services.config
        started = run.record.started_at
        finished = utc_now()
        summary = RunSummary(
            task_id=run.record.task_id, run_id=run.record.run_id, group=self.group, command=self._command(),
            started_at=started, finished_at=finished,
            duration_seconds=parse_utc(finished) - parse_utc(started) if started else None,
            status=status, message=message, exit_code=exit_code, timed_out=run.timed_out,
            frames=self.frames, invalid_frames=self.invalid_frames,
            prompt_chars=len(run.request.prompt), prompt_bytes=len(run.request.prompt.encode()),
            session_id=run.request.session_id, new_session_id=self.new_session_id,
            prompt=run.request.prompt if config.log_prompts else None,
        )
        return functools.partial(finish_run, self.agent_files, summary, run.files.stderr, task_fields(run.record))

    def _command(self) -> tuple[str, ...]:
        try:
            return executor_named(self.run.record.executor).command(self.run.services.config, self.run.request)
        except Exception:
            return ()

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group, "frames": self.frames, "invalid_frames": self.invalid_frames, "closing": self.closing,
            "idle_for_seconds": None if self.idle_since is None else round(time.time() - self.idle_since, 3),
            "output_offset": self.run.record.extra.get("_output_offset", 0),
        }

    def final_fields(self) -> dict[str, Any]:
        """The ``handoff``: the newest non-empty text result the agent gave (None: it answered nothing)."""
        texts = (output.get("result") for output in reversed(self.outputs))
        return {"handoff": handoff_for(next((text for text in texts if isinstance(text, str) and text.strip()), None))}
