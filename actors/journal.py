"""The Journal: the one way a run's transition is written, and the one place its listeners hear of it.

Every change of a run's record that may carry callback events (a TaskActor's transitions, an agent's frames,
the supervisor canceling a queued run) goes through :meth:`Journal.commit`: the record and its outbox events
are written in one store transaction, and only then is every listener told of each new event (today the
CallbackActor, which delivers them). Fan-out is a plain ``tell`` to a list of actor refs, as Mopidy's
listeners are: the journal never waits on a listener, and a listener that has stopped (shutdown) is skipped;
the outbox, not the message, is the truth, so a lost notice is found again when the CallbackActor starts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pykka

from actors.base import tell_if_alive
from actors.messages import CallbackQueued
from host_runner.domain.record import TaskRecord
from host_runner.store.outbox import record_fields
from host_runner.store.sqlite import OutboxEvent, Store

__all__ = ["Journal"]


class Journal:
    """Commits transitions with their outbox events, then notifies the listeners. Shared by every actor: it
    keeps no state of its own but the listener list (the store serializes the writes)."""

    def __init__(self, store: Store, listeners: Sequence[pykka.ActorRef[Any]] = ()) -> None:
        self.store = store
        self._listeners: tuple[pykka.ActorRef[Any], ...] = tuple(listeners)
        self._lock = threading.Lock()  # listeners are added from the starting thread, read from actor threads

    def add_listener(self, ref: pykka.ActorRef[Any]) -> None:
        """Tell ``ref`` a :class:`CallbackQueued` for every event committed from now on."""
        with self._lock:
            self._listeners = (*self._listeners, ref)

    @property
    def listeners(self) -> tuple[pykka.ActorRef[Any], ...]:
        return self._listeners

    def commit(
        self, record: TaskRecord, callback_url: str | None, events: Sequence[Mapping[str, Any]] | None = None,
        *, progress: Sequence[Mapping[str, Any]] = (), progress_url: str | None = None,
    ) -> list[OutboxEvent]:
        """Write ``record``; with ``callback_url``, add its callback events to the outbox in the same
        transaction, then tell the listeners. ``events`` None: the transition's own status event (the record's
        contract fields); otherwise one event per item, in order (none for an empty sequence).

        ``progress``: bodies of progress events (an agent CLI's messages, commands, file changes): in the event log
        always, and as callback events too with ``progress_url`` (the task asked for them).

        Raises :class:`host_runner.domain.errors.StoreUnavailable` when nothing could be written: then no
        listener is told either.
        """
        if events is None and not progress:
            event = self.store.update(record, callback_url=callback_url)
            added = [event] if event is not None else []
        else:
            own = [record_fields(record)] if events is None else list(events)
            added = self.store.update_with_events(record, callback_url, own, progress=progress,
                                                  progress_url=progress_url)
        listeners = self._listeners
        for outbox_event in added:
            for listener in listeners:
                tell_if_alive(listener, CallbackQueued(outbox_event.event_id, outbox_event))
        return added
