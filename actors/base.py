"""The base of our actors: dispatch by message type, and a ``tell`` that fails is logged instead of fatal.

pykka stops an actor whose handler raises on a ``tell`` (nobody is there to receive the error). For a
TaskActor that would strand a running process, so handlers of told messages are guarded here; handlers of
asked messages (subclasses of :class:`Ask`) let exceptions travel back to the asker as pykka intends.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.messages import Describe

logger = logging.getLogger(__name__)


@functools.cache  # one regex per message type, not per message
def _handler_name(message_type: type) -> str:
    """``FooBar`` → ``on_foo_bar``; a private ``_FooBar`` (an actor's message to itself) → ``on__foo_bar``."""
    name = message_type.__name__
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.lstrip("_")).lower()
    return ("on__" if name.startswith("_") else "on_") + snake


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> None:
    """Tell ``ref``, unless it has stopped meanwhile (shutdown): then there is nobody left to tell."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("%s stopped before it could be told %s", ref, type(message).__name__)


class Actor(pykka.ThreadingActor):
    """Routes a message of class ``FooBar`` to ``self.on_foo_bar(message)``."""

    #: Message types that are asked (their handler's exceptions go back to the asker).
    asked: frozenset[type] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.created_monotonic = time.monotonic()

    def on_receive(self, message: Any) -> Any:
        handler: Callable[[Any], Any] | None = getattr(self, _handler_name(type(message)), None)
        if handler is None:
            logger.error("%s has no handler for %r", type(self).__name__, message)
            return None
        if type(message) in self.asked or type(message) is Describe:
            return handler(message)
        try:
            return handler(message)
        except Exception:
            logger.exception("%s failed to handle %s", type(self).__name__, type(message).__name__)
            self.on_handler_failure(message)
            return None

    def on_handler_failure(self, message: Any) -> None:
        """Called after a told message's handler raised; override to record the failure."""

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
        """Run blocking ``work`` in a helper thread, then tell this actor ``reply(result, error)``.

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
        thread = threading.Thread(target=context.run, args=(run,), name=f"{type(self).__name__}-helper", daemon=True)
        thread.start()

        def wait(timeout: float) -> Any:
            thread.join(timeout)
            return replies[0] if replies else None

        return wait
