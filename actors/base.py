"""The base of our actors: an explicit dispatch table, and a ``tell`` that fails is logged instead of fatal.

A handler says which messages it takes with :func:`handles` (``@handles(Cancel)``), so grepping a message's
class finds its handler; each class's table is collected once from its methods (pykka's own ``_actor.py``
dispatches its messages explicitly too). An actor made of parts (a TaskActor and its run's session) adds a
part's handlers to its table with :meth:`Actor.route_to`.

pykka stops an actor whose handler raises on a ``tell`` (nobody is there to receive the error). For a
TaskActor that would strand a running process, so handlers of told messages are guarded here: the error is
logged and :meth:`Actor.on_handler_failure` runs. Handlers of asked messages (``@handles(..., asked=True)``)
let exceptions travel back to the asker as pykka intends.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka

from actors.helper_threads import helper_threads
from actors.messages import Describe

__all__ = ["Actor", "Route", "handles", "routes_of", "tell_if_alive"]

logger = logging.getLogger(__name__)

Method = TypeVar("Method", bound=Callable[..., Any])

#: The attribute :func:`handles` sets on a method: the message classes it takes, and whether they are asked.
_MARK = "__handles__"


def handles(*message_types: type, asked: bool = False) -> Callable[[Method], Method]:
    """Mark a method as the handler of ``message_types``; with ``asked``, its exceptions go back to the asker.

    The method is returned unchanged (its name still shows in stacks and logs).
    """
    if not message_types:
        raise TypeError("@handles needs at least one message class")

    def mark(method: Method) -> Method:
        setattr(method, _MARK, (message_types, asked))
        return method

    return mark


@dataclass(frozen=True)
class Route:
    """Where one message class goes: a bound handler, and whether its messages are asked."""

    handler: Callable[[Any], Any]
    asked: bool


@functools.cache  # one walk over the class's methods per class, not per actor
def _class_table(cls: type) -> dict[type, tuple[str, bool]]:
    """Message class → (method name, asked) for every ``@handles`` method of ``cls`` and its bases.

    A subclass may override a handler by name (the table keeps the name, ``getattr`` finds the override) or
    take a message class over with a new ``@handles``; one class marking two methods for the same message is
    a mistake, refused when the table is built.
    """
    table: dict[type, tuple[str, bool]] = {}
    for klass in reversed(cls.__mro__):
        own: set[type] = set()
        for name, attribute in vars(klass).items():
            mark = getattr(attribute, _MARK, None)
            if mark is None:
                continue
            message_types, asked = mark
            for message_type in message_types:
                if message_type in own:
                    raise TypeError(f"{klass.__name__} has two handlers for {message_type.__name__}")
                own.add(message_type)
                table[message_type] = (name, asked)
    return table


def routes_of(owner: object) -> dict[type, Route]:
    """The ``@handles`` methods of ``owner``'s class, bound to ``owner``, by message class."""
    return {message_type: Route(getattr(owner, name), asked)
            for message_type, (name, asked) in _class_table(type(owner)).items()}


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> None:
    """Tell ``ref``, unless it has stopped meanwhile (shutdown): then there is nobody left to tell."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("%s stopped before it could be told %s", ref, type(message).__name__)


class Actor(pykka.ThreadingActor):
    """Routes each message to the handler its class was registered for with :func:`handles`."""

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        """The inbox: pykka's hook for actor types. A ``SimpleQueue`` (C, one lock) instead of ``ThreadingActor``'s
        ``queue.Queue`` (Python conditions, a lock made per waiting get): every tell is a put, every message a get,
        a dozen per task; it has all of pykka's inbox protocol (put, get, empty)."""
        return queue.SimpleQueue()

    def __init__(self) -> None:
        super().__init__()
        self.created_monotonic = time.monotonic()
        self._routes = routes_of(self)

    def route_to(self, part: object) -> None:
        """Send the messages ``part``'s ``@handles`` methods take to ``part`` (a component of this actor, which
        runs in this actor's thread). A message class this actor handles already is a mistake: refused."""
        for message_type, route in routes_of(part).items():
            if message_type in self._routes:
                raise TypeError(f"{type(self).__name__} already handles {message_type.__name__}")
            self._routes[message_type] = route

    def on_receive(self, message: Any) -> Any:
        route = self._routes.get(type(message))
        if route is None:
            logger.error("%s has no handler for %r", type(self).__name__, message)
            return None
        if route.asked:
            return route.handler(message)
        try:
            return route.handler(message)
        except Exception:
            logger.exception("%s failed to handle %s", type(self).__name__, type(message).__name__)
            self.on_handler_failure(message)
            return None

    def on_handler_failure(self, message: Any) -> None:
        """Called after a told message's handler raised; override to record the failure."""

    @handles(Describe, asked=True)
    def on_describe(self, message: Describe) -> dict[str, Any]:
        """For /debug/actors: the actor's age and :meth:`describe`. Answered from memory, never by waiting."""
        return {"age_seconds": round(time.monotonic() - self.created_monotonic, 3), **self.describe()}

    def describe(self) -> dict[str, Any]:
        """What this actor owns right now (JSON-able); subclasses say more."""
        return {}

    def tell_later(self, message: Any) -> Callable[[], None]:
        """A callable that tells ``message`` to this actor (for reactor callbacks and helper threads)."""
        ref = self.actor_ref
        return lambda: tell_if_alive(ref, message)

    def in_background(
        self, work: Callable[[], Any], reply: Callable[[Any, BaseException | None], Any]
    ) -> Callable[[float], Any]:
        """Run blocking ``work`` in a helper thread (:mod:`actors.helper_threads`), then tell this actor
        ``reply(result, error)``.

        Returns ``wait(timeout)``, which joins the helper and returns the reply message (None if not done):
        an actor that is being stopped cannot receive the reply any more, but may still need it.
        """
        ref = self.actor_ref
        replies: list[Any] = []

        def run() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # reported to the actor, which records it
                result, error = None, exc
            message = reply(result, error)
            replies.append(message)
            tell_if_alive(ref, message)

        # The helper logs with the actor's context (task_id/run_id, see host_runner.ops.runner_log).
        context = contextvars.copy_context()
        done = threading.Event()

        def job() -> None:
            try:
                context.run(run)
            finally:
                done.set()

        helper_threads.run(job)

        def wait(timeout: float) -> Any:
            done.wait(timeout)
            return replies[0] if replies else None

        return wait
