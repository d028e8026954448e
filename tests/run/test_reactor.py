"""The reactor: process exits and timers, called back from its one thread, with a real subprocess. Registering
costs its thread nothing it need not do (issue 22): a later timer than one pending does not wake it, and a watch
needs no wake-up at all; every timer still fires at its deadline, in order."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from host_runner.run.reactor import Reactor
from support.reactors import CountingReactor, running_reactor

@pytest.fixture
def reactor() -> Iterator[CountingReactor]:
    yield from running_reactor()



def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_an_exit_watched_while_the_thread_waits_without_a_deadline_is_seen():
    reactor = Reactor()
    reactor.start()
    try:
        time.sleep(0.1)  # the thread now waits with no timer at all: only the watch's own readiness can wake it
        before = open_fds()
        process = subprocess.Popen(["sleep", "0.2"])
        exited = threading.Event()
        reactor.watch_exit(process.pid, exited.set)
        assert reactor.watched == 1
        assert exited.wait(5)
        process.wait()
        assert reactor.watched == 0
        assert open_fds() == before  # the pidfd is closed once reported
    finally:
        reactor.stop()


def test_a_process_already_gone_is_reported_at_once():
    reactor = Reactor()
    reactor.start()
    try:
        process = subprocess.Popen(["true"])
        process.wait()
        gone = threading.Event()
        reactor.watch_exit(process.pid, gone.set)
        assert gone.wait(5)
    finally:
        reactor.stop()


def test_a_timer_due_before_every_pending_one_wakes_the_thread():
    reactor = Reactor()
    reactor.start()
    try:
        reactor.call_later(30, lambda: None)
        time.sleep(0.1)  # the thread sleeps until the 30 s timer
        fired = threading.Event()
        started = time.monotonic()
        reactor.call_later(0.05, fired.set)
        assert fired.wait(5)
        assert time.monotonic() - started < 2
    finally:
        reactor.stop()


def test_timers_fire_in_deadline_order_and_cancelled_ones_never():
    reactor = Reactor()
    reactor.start()
    try:
        order: list[str] = []
        done = threading.Event()
        reactor.call_later(0.1, lambda: order.append("first"))
        later = reactor.call_later(0.2, lambda: order.append("cancelled"))
        reactor.call_later(0.3, lambda: (order.append("last"), done.set()))  # registered without a wake-up
        reactor.call_later(0.15, lambda: 1 / 0)  # a failing callback is logged; the reactor goes on
        later.cancel()
        assert done.wait(5)
        assert order == ["first", "last"]
    finally:
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


def test_an_exit_watch_needs_no_wake_up(reactor: CountingReactor):
    wakes = reactor.wakes
    process = subprocess.Popen(["sleep", "0.1"])
    exited = threading.Event()
    reactor.watch_exit(process.pid, exited.set)
    assert exited.wait(5) and reactor.wakes == wakes
    process.wait()
