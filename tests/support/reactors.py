"""A real reactor that counts what is asked of it: the timers set and the times its thread is woken."""

from __future__ import annotations

from collections.abc import Iterator

from host_runner.run.reactor import Callback, Reactor, Timer


class CountingReactor(Reactor):
    def __init__(self) -> None:
        super().__init__()
        self.timers_set = 0
        self.wakes = 0

    def call_later(self, delay: float, callback: Callback) -> Timer:
        self.timers_set += 1
        return super().call_later(delay, callback)

    def _wake(self) -> None:
        self.wakes += 1
        super()._wake()


def running_reactor() -> Iterator[CountingReactor]:
    """A started CountingReactor, stopped when the generator is closed: the body of a test module's fixture."""
    reactor = CountingReactor()
    reactor.start()
    yield reactor
    reactor.stop()
