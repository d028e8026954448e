"""Helper threads are reused: a job goes to an idle thread, a new thread starts only when none is idle (so a
slow job never delays another), and idle threads end."""

from __future__ import annotations

import threading

from actors.helper_threads import HelperThreads
from support.waiting import wait_for


def test_jobs_reuse_an_idle_thread():
    helpers = HelperThreads(idle_seconds=30)
    seen: list[int] = []
    for _ in range(5):
        done = threading.Event()
        helpers.run(lambda done=done: (seen.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        wait_for(lambda: helpers.idle == 1, timeout=5)
    assert len(set(seen)) == 1


def test_a_slow_job_never_delays_another():
    helpers = HelperThreads(idle_seconds=30)
    release = threading.Event()
    quick = threading.Event()
    helpers.run(release.wait)
    helpers.run(quick.set)
    assert quick.wait(2), "the second job waited for the first"
    release.set()


def test_idle_threads_end_and_a_failing_job_keeps_its_thread():
    helpers = HelperThreads(idle_seconds=0.2)
    before = threading.active_count()
    events = [threading.Event() for _ in range(4)]
    gate = threading.Event()
    for event in events:
        helpers.run(lambda event=event: (gate.wait(5), event.set()))
    assert threading.active_count() == before + 4
    gate.set()
    assert all(event.wait(5) for event in events)
    helpers.run(lambda: 1 / 0)  # logged; the thread serves on
    wait_for(lambda: threading.active_count() == before and helpers.idle == 0, timeout=10, what="idle threads end")
    done = threading.Event()
    helpers.run(done.set)  # a job after they ended starts a thread again
    assert done.wait(5)
