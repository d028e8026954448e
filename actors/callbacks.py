"""The CallbackActor: the only sender of status callbacks.

Per run, events go out strictly in order (``running`` before the terminal status): a run's next event waits
until the previous one was delivered or given up. Deliveries happen in a bounded thread pool and retries are
scheduled on the reactor, so neither this actor nor any TaskActor ever waits on a receiver.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from actors.base import Actor
from actors.messages import OutputProduced, StatusChanged
from host_runner.config import Config
from host_runner.logs import redact_url, task_fields
from host_runner.models import TERMINAL_STATUSES, TaskRecord
from host_runner.reactor import Reactor
from host_runner.stats import CallbackStats

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429})
CALLBACK_FIELDS = (
    "status", "message", "started_at", "finished_at", "exit_code", "stdout", "stderr", "container_id",
    "worktree_cleanup_attempted", "worktree_cleanup_succeeded", "worktree_cleanup_message",
)


def callback_body(record: TaskRecord, sequence: int, event_id: str) -> dict[str, Any]:
    """The JSON a receiver gets: the contract's fields plus identity and ordering."""
    public = record.to_public()
    body = {name: public.get(name) for name in CALLBACK_FIELDS}
    body.update(task_id=record.task_id, run_id=record.run_id, event_id=event_id, sequence=sequence)
    return body


def output_body(record: TaskRecord, output: dict[str, Any], index: int, sequence: int, event_id: str) -> dict[str, Any]:
    """An agent's result frame as an event: status ``output``, the frame in ``output``, its number in
    ``output_index`` (1 for the run's first), and the record's other fields as in status events."""
    body = callback_body(record, sequence, event_id)
    body.update(status="output", output=output, output_index=index)
    return body


@dataclass
class Delivery:
    url: str
    token: str | None
    body: dict[str, Any]
    attempts: int = 0
    last_error: str | None = None
    queued_monotonic: float = field(default_factory=time.monotonic)


@dataclass
class Lane:
    """The events of one run, oldest first; ``busy`` while the head is being sent or waits for a retry."""

    events: deque[Delivery] = field(default_factory=deque)
    busy: bool = False
    sequence: int = 0
    last_status: str | None = None


@dataclass(frozen=True)
class _Attempted:
    run: tuple[str, str]
    delivered: bool
    retryable: bool
    error: str | None


@dataclass(frozen=True)
class _RetryDue:
    run: tuple[str, str]


class CallbackActor(Actor):
    """Delivers :class:`StatusChanged` events to each task's ``status_callback_url``."""

    def __init__(self, config: Config, reactor: Reactor) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.pool = ThreadPoolExecutor(max_workers=config.callback_workers, thread_name_prefix="callback")
        self.sessions = threading.local()
        self.stats = CallbackStats()

    def on_stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def on_status_changed(self, message: StatusChanged) -> None:
        lane = self.lanes.setdefault(message.record.key, Lane())
        lane.sequence += 1
        body = callback_body(message.record, lane.sequence, str(uuid.uuid4()))
        lane.events.append(Delivery(message.url, message.token, body))
        self._pump(message.record.key)

    def on_output_produced(self, message: OutputProduced) -> None:
        """Queued in the same lane as the run's status events, so everything arrives in the order it happened."""
        lane = self.lanes.setdefault(message.record.key, Lane())
        lane.sequence += 1
        body = output_body(message.record, message.output, message.index, lane.sequence, str(uuid.uuid4()))
        lane.events.append(Delivery(message.url, message.token, body))
        self._pump(message.record.key)

    def _pump(self, run: tuple[str, str]) -> None:
        lane = self.lanes.get(run)
        if lane is None or lane.busy:
            return
        if not lane.events:
            if lane.last_status in TERMINAL_STATUSES:
                del self.lanes[run]  # the run is over and everything was sent
            return
        lane.busy = True
        self.pool.submit(self._send, run, lane.events[0])

    def _send(self, run: tuple[str, str], delivery: Delivery) -> None:
        """Pool thread: one HTTP attempt, reported back to the actor."""
        session = getattr(self.sessions, "session", None)
        if session is None:
            session = self.sessions.session = requests.Session()
        headers = {"X-Runner-Event-Id": delivery.body["event_id"]}
        if delivery.token:
            headers["X-Runner-Token"] = delivery.token
        try:
            response = session.post(delivery.url, json=delivery.body, headers=headers,
                                    timeout=self.config.callback_timeout_seconds)
        except requests.RequestException as exc:
            result = _Attempted(run, False, True, f"{type(exc).__name__}")
        else:
            code = response.status_code
            response.close()
            if 200 <= code < 300:
                result = _Attempted(run, True, False, None)
            else:
                result = _Attempted(run, False, code >= 500 or code in RETRYABLE_STATUS, f"HTTP {code}")
        self.tell_later(result)()

    def on__attempted(self, message: _Attempted) -> None:
        lane = self.lanes[message.run]
        delivery = lane.events[0]
        delivery.attempts += 1
        delivery.last_error = message.error
        self.stats.attempted(message.delivered)
        if not message.delivered and message.retryable and delivery.attempts < self.config.callback_max_attempts:
            delay = min(60.0, self.config.callback_backoff_seconds * 2 ** (delivery.attempts - 1))
            delay *= random.uniform(0.8, 1.2)
            logger.info("callback %s for task %s failed (%s); retry %d in %.1fs", delivery.body["status"],
                        message.run[0], message.error, delivery.attempts, delay, extra=task_fields(message.run))
            self.reactor.call_later(delay, self.tell_later(_RetryDue(message.run)))
            return
        if not message.delivered:
            logger.warning("gave up on callback %s for task %s after %d attempts: %s", delivery.body["status"],
                           message.run[0], delivery.attempts, message.error, extra=task_fields(message.run))
        lane.events.popleft()
        self.stats.finished(message.delivered, time.monotonic() - delivery.queued_monotonic)
        lane.last_status = delivery.body["status"]
        lane.busy = False
        self._pump(message.run)

    def on__retry_due(self, message: _RetryDue) -> None:
        lane = self.lanes.get(message.run)
        if lane is not None and lane.events:
            self.pool.submit(self._send, message.run, lane.events[0])

    def describe(self) -> dict[str, Any]:
        """Pending events per run (URLs without credentials or query), and the delivery counters."""
        return {
            "lanes": [
                {"task_id": run[0], "run_id": run[1], "url": redact_url(lane.events[0].url) if lane.events else None,
                 "pending": len(lane.events), "sending": lane.busy,
                 "next_status": lane.events[0].body["status"] if lane.events else None,
                 "attempts": lane.events[0].attempts if lane.events else 0,
                 "last_error": lane.events[0].last_error if lane.events else None}
                for run, lane in self.lanes.items()
            ],
            "stats": self.stats.snapshot(),
        }
