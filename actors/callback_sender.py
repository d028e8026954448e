"""The CallbackActor: the only sender of status callbacks, delivering the store's outbox.

- **Durable**: events are written to the outbox with the transition they report (see ``Store.update``); this
  actor is only told their ids. At start it loads every pending event, so nothing is lost by a restart.
- **Ordered**: per run, event n+1 is not sent before event n was delivered or given up.
- **Isolated**: events are grouped in lanes per receiver (scheme, host, port). Sends run in a bounded pool of
  ``callback_workers`` threads; one receiver may use at most half of them while it answers, and only one
  while it fails (connection errors, timeouts, retryable statuses), and free threads go round-robin over the
  receivers with work. So a slow or dead receiver cannot hold the pool, nor make another receiver wait behind
  its backlog.
- **Never blocking**: this actor does no network I/O; attempts run in the pool and report back as messages,
  and retries wait on the reactor's timers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from actors.base import Actor, handles
from actors.messages import CallbackQueued
from host_runner.delivery.http import Sender, attempt, receiver_of
from host_runner.delivery.retry import Outcome, backoff_delay
from host_runner.domain.errors import StoreUnavailable
from host_runner.ops.config import Config
from host_runner.ops.runner_log import redact_url, task_fields
from host_runner.ops.stats import CallbackStats
from host_runner.run.reactor import Reactor
from host_runner.store.outbox import DELIVERED, FAILED, PENDING, Delivery
from host_runner.store.sqlite import OutboxEvent, Store

logger = logging.getLogger(__name__)

Run = tuple[str, str]


@dataclass
class RunQueue:
    """A run's undelivered events in sequence order. ``busy`` while the head is being sent or awaits a retry."""

    receiver: str
    events: deque[OutboxEvent] = field(default_factory=deque)
    attempts: int = 0  # of the head event
    last_error: str | None = None  # of the head event
    busy: bool = False
    sending: bool = False  # the head is being sent right now (busy and not waiting for a retry)


@dataclass
class Lane:
    """One receiver: the runs whose head event may be sent now, and how many sends to it are under way."""

    ready: deque[Run] = field(default_factory=deque)
    in_flight: int = 0
    failing: bool = False
    scheduled: bool = False  # listed in CallbackActor.turns


@dataclass(frozen=True)
class _Attempted:
    run: Run
    event_id: str
    outcome: Outcome


@dataclass(frozen=True)
class _RetryDue:
    run: Run
    event_id: str


class CallbackActor(Actor):
    """Delivers outbox events (announced by :class:`CallbackQueued`) to each task's ``status_callback_url``."""

    def __init__(self, config: Config, reactor: Reactor, store: Store) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.store = store
        self.runs: dict[Run, RunQueue] = {}
        self.lanes: dict[str, Lane] = {}
        self.known: dict[str, float] = {}  # pending event id → when this actor got it (monotonic), for stats
        self.turns: deque[str] = deque()  # receivers with ready runs, in round-robin order
        self.free_workers = config.callback_workers
        self.per_receiver = max(1, config.callback_workers // 2)
        self.pool = ThreadPoolExecutor(max_workers=config.callback_workers, thread_name_prefix="callback")
        self.senders = threading.local()  # each worker thread's Sender (its kept connections)
        self.stats = CallbackStats()

    # --- lifecycle -------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        pending = self.store.pending_callbacks()
        for event in pending:
            try:
                self._add(event)
            except Exception:  # one bad row must not stop the others (nor this actor) from starting
                logger.exception("cannot resume callback event %s of task %s", event.event_id, event.task_id,
                                 extra=task_fields(event.run))
        if pending:
            logger.info("resuming %d undelivered callback events", len(pending))
        self._dispatch()

    def on_stop(self) -> None:
        # Sends under way finish in their threads; their outcome is not recorded, so those events are still
        # pending in the outbox and are sent again (same event id) by the next start.
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- new events ------------------------------------------------------------------------------------------
    @handles(CallbackQueued)
    def on_callback_queued(self, message: CallbackQueued) -> None:
        if message.event_id in self.known:
            return  # already loaded at start
        event = message.event or self.store.callback_event(message.event_id)
        if event is None or event.state != PENDING:
            return
        self._add(event)
        self._dispatch()

    def _add(self, event: OutboxEvent) -> None:
        self.known[event.event_id] = time.monotonic()
        queue = self.runs.get(event.run)
        if queue is None:
            queue = self.runs[event.run] = RunQueue(receiver_of(event.url))
        if queue.events and queue.events[-1].sequence > event.sequence:  # cannot happen, but order is the point
            queue.events = deque(sorted([*queue.events, event], key=lambda item: item.sequence))
        else:
            queue.events.append(event)
        if len(queue.events) == 1 and not queue.busy:
            queue.attempts, queue.last_error = event.attempts, event.last_error
            self._make_ready(event.run)

    # --- scheduling ------------------------------------------------------------------------------------------
    def _lane(self, receiver: str) -> Lane:
        lane = self.lanes.get(receiver)
        if lane is None:
            lane = self.lanes[receiver] = Lane()
        return lane

    def _make_ready(self, run: Run) -> None:
        queue = self.runs[run]
        lane = self._lane(queue.receiver)
        lane.ready.append(run)
        if not lane.scheduled:
            lane.scheduled = True
            self.turns.append(queue.receiver)

    def _limit(self, lane: Lane) -> int:
        return 1 if lane.failing else self.per_receiver

    def _dispatch(self) -> None:
        """Hand ready heads to free workers, one receiver at a time in turn."""
        skipped = 0  # receivers in a row that are at their limit
        while self.free_workers > 0 and self.turns and skipped < len(self.turns):
            receiver = self.turns.popleft()
            lane = self.lanes[receiver]
            if not lane.ready:
                lane.scheduled = False
                continue
            if lane.in_flight >= self._limit(lane):
                self.turns.append(receiver)  # its turn comes again when one of its sends ends
                skipped += 1
                continue
            skipped = 0
            self._send_head(lane.ready.popleft(), lane)
            if lane.ready:
                self.turns.append(receiver)
            else:
                lane.scheduled = False

    def _send_head(self, run: Run, lane: Lane) -> None:
        queue = self.runs[run]
        event = queue.events[0]
        loaded = self.store.callback_delivery(event.event_id)
        if loaded is None:  # vanished from the store: nothing to send
            logger.error("callback event %s of task %s is no longer in the outbox", event.event_id, run[0],
                         extra=task_fields(run))
            self._finish(run)
            return
        url, token, body = loaded
        queue.busy = queue.sending = True
        lane.in_flight += 1
        self.free_workers -= 1
        delivery = Delivery(event.event_id, url, token, body, queue.attempts + 1)
        self.pool.submit(self._attempt, run, delivery)

    def _attempt(self, run: Run, delivery: Delivery) -> None:
        """Worker thread: one HTTP attempt, reported back to the actor."""
        sender = getattr(self.senders, "sender", None)
        if sender is None:
            sender = self.senders.sender = Sender()
        try:
            outcome = attempt(sender, delivery, self.config.callback_secret, self.config.callback_timeout_seconds,
                              self.config.callback_allowed_hosts)
        except Exception as exc:  # a bug here must not leave the run waiting forever
            logger.exception("callback attempt for task %s failed unexpectedly", run[0], extra=task_fields(run))
            outcome = Outcome(False, True, f"internal error ({type(exc).__name__})")
        self.tell_later(_Attempted(run, delivery.event_id, outcome))()

    # --- results ---------------------------------------------------------------------------------------------
    @handles(_Attempted)
    def _on_attempted(self, message: _Attempted) -> None:
        queue = self.runs[message.run]
        event = queue.events[0]
        lane = self.lanes[queue.receiver]
        lane.in_flight -= 1
        self.free_workers += 1
        queue.sending = False
        queue.attempts += 1
        outcome = message.outcome
        queue.last_error = outcome.error or queue.last_error
        self.stats.attempted(outcome.delivered)
        lane.failing = not outcome.delivered and outcome.retryable
        try:
            self._record_outcome(message, queue, event, outcome)
        except StoreUnavailable as exc:
            # The outcome cannot be written (a full disk): keep the head and send it again later (same event id,
            # so a receiver that got it already can tell), rather than settle it only in memory.
            delay = backoff_delay(queue.attempts, self.config.callback_backoff_seconds,
                                  self.config.callback_backoff_max_seconds)
            logger.warning("callback %s #%d of task %s: %s; trying again in %.2fs", event.status, event.sequence,
                           event.task_id, exc, delay, extra=task_fields(message.run))
            self.reactor.call_later(delay, self.tell_later(_RetryDue(message.run, event.event_id)))
        self._dispatch()

    def _record_outcome(self, message: _Attempted, queue: RunQueue, event: OutboxEvent, outcome: Outcome) -> None:
        """Persist the attempt's outcome, then settle the head or schedule its retry."""
        if outcome.delivered:
            self.store.record_callback_attempt(event.event_id, state=DELIVERED, attempts=queue.attempts,
                                               last_error=None)
            logger.debug("callback %s #%d of task %s delivered (attempt %d)", event.status, event.sequence,
                         event.task_id, queue.attempts, extra=task_fields(message.run))
            self._finish(message.run, delivered=True)
        elif outcome.retryable and queue.attempts < self.config.callback_max_attempts:
            self.store.record_callback_attempt(event.event_id, state=PENDING, attempts=queue.attempts,
                                               last_error=outcome.error)
            delay = backoff_delay(queue.attempts, self.config.callback_backoff_seconds,
                                  self.config.callback_backoff_max_seconds)
            logger.info("callback %s #%d of task %s run %s failed (%s); retry %d in %.2fs", event.status,
                        event.sequence, event.task_id, event.run_id, outcome.error, queue.attempts, delay,
                        extra=task_fields(message.run))
            self.reactor.call_later(delay, self.tell_later(_RetryDue(message.run, event.event_id)))
        else:
            self.store.record_callback_attempt(event.event_id, state=FAILED, attempts=queue.attempts,
                                               last_error=outcome.error)
            logger.warning("gave up on callback %s #%d of task %s run %s after %d attempts: %s", event.status,
                           event.sequence, event.task_id, event.run_id, queue.attempts, outcome.error,
                           extra=task_fields(message.run))
            self._finish(message.run, delivered=False)

    @handles(_RetryDue)
    def _on_retry_due(self, message: _RetryDue) -> None:
        queue = self.runs.get(message.run)
        if queue is None or not queue.events or queue.events[0].event_id != message.event_id:
            return
        queue.busy = False
        self._make_ready(message.run)
        self._dispatch()

    def _finish(self, run: Run, delivered: bool | None = None) -> None:
        """The head event of ``run`` is settled (delivered, or given up when False): the next one may go."""
        queue = self.runs[run]
        event = queue.events.popleft()
        since = self.known.pop(event.event_id, None)
        if delivered is not None and since is not None:
            self.stats.finished(delivered, time.monotonic() - since)
        queue.busy = False
        if queue.events:
            queue.attempts, queue.last_error = queue.events[0].attempts, queue.events[0].last_error
            self._make_ready(run)
        else:
            del self.runs[run]
            lane = self.lanes.get(queue.receiver)
            if lane is not None and not lane.ready and lane.in_flight == 0 and not lane.scheduled:
                del self.lanes[queue.receiver]  # keeps the lane table as small as the receivers with work

    def on_handler_failure(self, message: Any) -> None:
        """A bug while handling a result must not stall the run: treat the head as settled and go on."""
        if isinstance(message, _Attempted) and message.run in self.runs:
            queue = self.runs[message.run]
            if queue.events and queue.events[0].event_id == message.event_id and queue.busy:
                self._finish(message.run)
                self._dispatch()

    # --- introspection ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """For /debug/actors: pending events per run (URLs without user info or query), the receivers' lanes,
        and the delivery counters. From memory only."""
        lanes = []
        for run, queue in self.runs.items():
            head = queue.events[0] if queue.events else None
            lanes.append({
                "task_id": run[0], "run_id": run[1], "url": redact_url(head.url) if head else None,
                "pending": len(queue.events), "sending": queue.sending,
                "next_status": head.status if head else None, "attempts": queue.attempts,
                "last_error": queue.last_error,
            })
        receivers = [
            {"receiver": name, "ready_runs": len(lane.ready), "sending": lane.in_flight, "failing": lane.failing,
             "limit": self._limit(lane)}
            for name, lane in self.lanes.items()
        ]
        return {"lanes": lanes, "receivers": receivers, "free_workers": self.free_workers,
                "stats": self.stats.snapshot()}
