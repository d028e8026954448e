"""The session of an agent CLI run in its machine-readable mode (``codex exec --json``, ``claude -p
--output-format stream-json``): what a TaskActor does on top of a plain run when the executor has an event
parser (:meth:`Executor.event_parser`).

- follows the CLI's stdout file (its JSON events) in a helper thread (:class:`OutputFollower` with a
  :class:`~host_runner.agent_cli.jsonl.JsonLines` reader), filling one
  :class:`~host_runner.agent_cli.transcript.Transcript`;
- appends the readable transcript (agent messages, commands with their exit codes) to ``transcript.log`` in the
  run directory: the record's ``stdout`` shows it instead of the raw events (which stay in stdout.log);
- persists the transcript's fields on the record as they come (``session_id``, ``final_message``, ``usage``,
  ``files_changed``, ``commands``, ``events``) with the read offset, so a re-adopted run goes on where the
  previous runner stopped reading; no status callback is sent for them (the contract's events are status changes);
- reports the agent's messages, commands and file changes as ``progress`` events, coalesced (at most one per
  ``PROGRESS_INTERVAL_SECONDS``): in the event stream (``?include=progress``), and to the callback URL when the
  task asked for them (``status_callback_events: ["status", "progress"]``);
- reads the rest after the process exited, then lets the CLI's own account decide a failure's reason (a failed
  turn: ``agent_error``, or ``auth_required`` when the credentials were refused) and puts the ``handoff`` on
  the terminal record and callback.

Claude Code plugs in through its executor's ``event_parser`` alone: the session, the record fields and the
handoff are the same. It may report a failed run (``is_error``) and exit 0: a failure the events decided fails
a run its exit code called a success. A run that resumed a session (the submit's ``session_id``) shows it as
``resumed_session_id``, set at submission (actors/submit_fields.py) for every executor that resumes sessions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from actors.base import handles, tell_if_alive
from actors.run_session import Conclusion, Phase, Run, RunSession
from host_runner.agent.follower import OutputFollower
from host_runner.agent_cli.jsonl import EventParser, JsonLines, Line, apply_line
from host_runner.agent_cli.transcript import Transcript
from host_runner.domain.errors import StoreUnavailable
from host_runner.executors import executor_named
from host_runner.ops.runner_log import task_fields
from host_runner.run.process_group import ExitStatus
from host_runner.run.reactor import Timer

__all__ = ["TranscriptSession"]

logger = logging.getLogger(__name__)


#: Progress events (agent messages, commands, file changes) are coalesced: at most one per this many seconds per
#: run, with at most PROGRESS_ITEMS items each (the rest go in the next).
PROGRESS_INTERVAL_SECONDS = 0.5
PROGRESS_ITEMS = 200


@dataclass(frozen=True)
class _FlushProgress:
    """The progress interval has passed: send what is pending."""


@dataclass(frozen=True)
class _Followed:
    """From the follower's thread: event ``lines`` it read, or (``done``) that it stopped for good, having read
    everything after the exit, or failed with ``error``."""

    lines: list[Line]
    done: bool = False
    error: BaseException | None = None


class TranscriptSession(RunSession):
    """One agent CLI run's events; its transcript lives in the actor's thread (the follower only parses lines)."""

    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.transcript = Transcript.from_fields(run.record.extra)
        self.follower: OutputFollower | None = None
        self.parser: EventParser | None = None
        self.drained = False
        # Progress items not yet committed as an event (kept on the record, so a restart sends them still).
        self.pending_progress: list[dict[str, Any]] = list(run.record.extra.get("_progress_pending") or [])
        self.last_progress_at = 0.0  # time.monotonic() of the last progress event
        self.progress_timer: Timer | None = None

    def on_running(self) -> None:
        self.parser = executor_named(self.run.record.executor).event_parser(self.run.services.config)
        if self.parser is None:  # the executor has no machine-readable mode (any more): a plain run
            self.drained = True
            return
        ref = self.run.actor_ref
        reader = JsonLines(self.run.record.extra.get("_transcript_offset", 0))
        self.follower = OutputFollower(
            self.run.files.stdout, reader.offset,
            on_events=lambda lines: tell_if_alive(ref, _Followed(lines)),
            on_done=lambda error: tell_if_alive(ref, _Followed([], done=True, error=error)),
            name=f"events-{self.run.record.task_id}", parser=reader,
        )
        self.run.files.transcript.touch(mode=0o600)  # the record's stdout is the transcript from now on
        self.follower.start()

    def on_stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()  # the next runner resumes reading at the persisted offset

    @handles(_Followed)
    def on_followed(self, message: _Followed) -> None:
        if message.done:
            self._drained(message.error)
            return
        try:
            if self.parser is None or self.run.phase not in (Phase.RUNNING, Phase.DRAINING):
                return
            for line in message.lines:
                apply_line(self.parser, self.transcript, line)
            text = self.transcript.take_lines()
            if text:
                with open(self.run.files.transcript, "a", encoding="utf-8") as handle:
                    handle.write(text)
            self.pending_progress += self.transcript.take_progress()
            progress = self._due_progress()
            # One write: the fields, where to resume reading and the progress event (a restart neither loses nor
            # repeats an event).
            record = self.run.record
            extra = {**record.extra, **self.transcript.to_fields(),
                     "_transcript_offset": message.lines[-1].end_offset, "_progress_pending": self.pending_progress}
            try:
                self.run.commit(record.evolve(extra=extra), events=(), progress=progress)
            except StoreUnavailable as exc:  # kept in memory: the next batch or the end writes it
                logger.warning("task %s: cannot record its agent CLI events yet: %s", record.task_id, exc)
                self.pending_progress = [item for body in progress for item in body["progress"]] + self.pending_progress
        finally:
            if self.follower is not None:
                self.follower.acknowledge()

    def _due_progress(self, now: bool = False) -> list[dict[str, Any]]:
        """The progress event to send now (none while the interval since the last one runs: a timer sends it)."""
        if not self.pending_progress:
            return []
        wait = self.last_progress_at + PROGRESS_INTERVAL_SECONDS - time.monotonic()
        if wait > 0 and not now:
            if self.progress_timer is None:
                self.progress_timer = self.run.services.reactor.call_later(wait, self.run.tell_later(_FlushProgress()))
            return []
        items, self.pending_progress = self.pending_progress[:PROGRESS_ITEMS], self.pending_progress[PROGRESS_ITEMS:]
        self.last_progress_at = time.monotonic()
        return [{"status": "progress", "progress": items}]

    @handles(_FlushProgress)
    def on_flush_progress(self, message: _FlushProgress) -> None:
        self.progress_timer = None
        self._flush_progress()

    def _flush_progress(self, now: bool = False) -> None:
        progress = self._due_progress(now)
        if progress:
            record = self.run.record
            extra = {**record.extra, "_progress_pending": self.pending_progress}
            try:
                self.run.commit(record.evolve(extra=extra), events=(), progress=progress)
            except StoreUnavailable as exc:
                logger.warning("task %s: cannot record its progress yet: %s", record.task_id, exc)

    def after_exit(self, outcome: ExitStatus | None) -> bool:
        """Read the rest of the events first (the final message, a failed turn): conclude once drained."""
        if self.follower is not None and not self.drained:
            self.follower.finish()
        return self.follower is None or self.drained

    def _drained(self, error: BaseException | None) -> None:
        self.drained = True
        while self.pending_progress and self.run.phase in (Phase.RUNNING, Phase.DRAINING):
            self._flush_progress(now=True)  # before the terminal status: progress never comes after it
        if error is not None:  # the events after this point stay in stdout.log only
            logger.error("task %s: reading the agent CLI's events failed: %s", self.run.record.task_id, error,
                         extra=task_fields(self.run.record))
        if self.run.phase is Phase.DRAINING:
            self.run.conclude()

    def conclusion(self, outcome: ExitStatus | None, default: Conclusion) -> Conclusion:
        status, text, exit_code, reason = default
        failure = self.transcript.failure_reason
        if failure is not None and (status == "success" or (status == "failed" and reason == "exit_code")):
            # The CLI said why (a refused login, a model error): more useful than "exited with code 1"; and
            # Claude Code may report a failed run (is_error) and still exit 0.
            return "failed", self.transcript.error or text, exit_code, failure
        return default

    def final_fields(self) -> dict[str, Any]:
        return {**self.transcript.to_fields(), "handoff": self.transcript.handoff()}

    def describe(self) -> dict[str, Any]:
        return {"events": self.transcript.events, "session_id": self.transcript.session_id,
                "transcript_offset": self.run.record.extra.get("_transcript_offset", 0)}
