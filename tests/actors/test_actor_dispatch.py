"""actors.base: handlers are found in an explicit table (``@handles``), a told message whose handler raises is
logged and leaves the actor alive (``on_handler_failure`` runs), an asked one's error goes back to the asker,
an unknown message is logged, and an actor made of parts routes a part's messages to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors.base import Actor, handles, routes_of
from actors.messages import Describe


class Boom:
    """Told: the handler raises."""


@dataclass(frozen=True)
class Question:
    """Asked: the handler raises when ``fail``, else answers."""

    fail: bool


class Unknown:
    """Nobody handles it."""

    def __repr__(self) -> str:
        return "Unknown()"


class Ping:
    """Handled by the actor's part (a plain class: any class may be a message)."""


class Part:
    """A component of an actor, as a run's session is of its TaskActor."""

    def __init__(self) -> None:
        self.pings = 0

    @handles(Ping)
    def on_ping(self, message: Ping) -> None:
        self.pings += 1


class Probe(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.failures: list[Any] = []
        self.part = Part()
        self.route_to(self.part)

    @handles(Boom)
    def on_boom(self, message: Boom) -> None:
        raise RuntimeError("a bug in a handler")

    @handles(Question, asked=True)
    def on_question(self, message: Question) -> str:
        if message.fail:
            raise ValueError("the asker gets this")
        return "answer"

    def on_handler_failure(self, message: Any) -> None:
        self.failures.append(message)

    def describe(self) -> dict[str, Any]:
        return {"failures": len(self.failures), "pings": self.part.pings}


@pytest.fixture
def probe() -> Any:
    ref = Probe.start()
    yield ref
    if ref.is_alive():
        ref.stop()


def test_a_told_message_whose_handler_raises_is_logged_and_the_actor_lives_on(probe, caplog):
    caplog.set_level(logging.ERROR, logger="actors.base")
    probe.tell(Boom())
    state = probe.ask(Describe(), timeout=5)
    assert probe.is_alive() and state["failures"] == 1
    assert any("Probe failed to handle Boom" in record.getMessage() for record in caplog.records)
    assert probe.ask(Question(fail=False), timeout=5) == "answer"


def test_an_asked_message_whose_handler_raises_fails_the_asker_only(probe):
    with pytest.raises(ValueError, match="the asker gets this"):
        probe.ask(Question(fail=True), timeout=5)
    assert probe.is_alive() and probe.ask(Describe(), timeout=5)["failures"] == 0


def test_an_unknown_message_is_logged_and_ignored(probe, caplog):
    caplog.set_level(logging.ERROR, logger="actors.base")
    probe.tell(Unknown())
    assert probe.ask(Describe(), timeout=5)["failures"] == 0
    assert any("Probe has no handler for Unknown()" in record.getMessage() for record in caplog.records)


def test_a_part_handles_the_messages_it_is_routed(probe):
    probe.tell(Ping())
    probe.tell(Ping())
    state = probe.ask(Describe(), timeout=5)
    assert state["pings"] == 2 and "age_seconds" in state


def test_the_table_is_explicit_and_ambiguity_is_refused():
    table = routes_of(Probe.__new__(Probe))
    assert {Boom, Question, Describe} <= set(table) and Ping not in table  # the part's come with route_to
    assert table[Question].asked and not table[Boom].asked and table[Describe].asked

    class Twice:
        @handles(Ping)
        def first(self, message: Ping) -> None: ...

        @handles(Ping)
        def second(self, message: Ping) -> None: ...

    with pytest.raises(TypeError, match="two handlers for Ping"):
        routes_of(Twice())

    class Clash(Actor):
        @handles(Ping)
        def on_ping(self, message: Ping) -> None: ...

    clash = Clash.__new__(Clash)
    Actor.__init__(clash)
    with pytest.raises(TypeError, match="already handles Ping"):
        clash.route_to(Part())


def test_a_subclass_overrides_a_handler_by_name():
    class Louder(Probe):
        def on_question(self, message: Question) -> str:
            return "louder"

    ref = Louder.start()
    try:
        assert ref.ask(Question(fail=True), timeout=5) == "louder"
    finally:
        ref.stop()
    assert not pykka.ActorRegistry.get_by_class(Louder)
