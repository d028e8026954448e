"""The reactor's timers (issue 22): a timer later than one already pending does not wake the reactor's thread
(no pipe write, no thread switch), and every timer still fires at its deadline, in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from host_runner.run.reactor import Reactor


class CountingReactor(Reactor):
    def __init__(self) -> None:
        super().__init__()
        self.wakes = 0

    def _wake(self) -> None:
        self.wakes += 1
        super()._wake()


@pytest.fixture
def reactor() -> Iterator[CountingReactor]:
    reactor = CountingReactor()
    reactor.start()
    yield reactor
    reactor.stop()


def test_a_later_timer_does_not_wake_the_reactor_and_all_fire_in_order(reactor: CountingReactor):
    fired: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()
    reactor.call_later(0.3, lambda: fired.append(("first", time.monotonic() - start)))
    wakes = reactor.wakes
    for n in range(100):  # like the timeouts of 100 tasks, all after the pending one
        reactor.call_later(0.4 + n / 1000, lambda n=n: fired.append((f"later{n}", time.monotonic() - start)))
    assert reactor.wakes == wakes  # none of them woke the reactor
    reactor.call_later(0.1, lambda: fired.append(("earlier", time.monotonic() - start)))
    assert reactor.wakes == wakes + 1  # a new first timer does
    reactor.call_later(0.6, done.set)
    assert done.wait(3)
    assert [name for name, _ in fired] == ["earlier", "first", *[f"later{n}" for n in range(100)]]
    when = dict(fired)
    assert 0.1 <= when["earlier"] < 0.25 and 0.3 <= when["first"] < 0.45 and 0.4 <= when["later0"] < 0.55
