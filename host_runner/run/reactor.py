"""One thread that waits for everything the actors must not wait for: process exits and timers.

Actors never block on a child or a sleep. They register here and are called back, in this thread, when a
process exits (Linux pidfds, so any process can be watched, not only our children) or a deadline passes.
Callbacks must be quick and must not raise: in practice they ``tell`` an actor what happened.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Callback = Callable[[], None]


class Timer:
    """A pending call; :meth:`cancel` is idempotent and safe from any thread."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callback) -> None:
        self.deadline = deadline
        self.callback: Callback | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None


class Reactor:
    """Process-exit and timer notifications from a single daemon thread.

    Registering costs the reactor's thread nothing it need not do: a pidfd goes straight into the epoll set
    (epoll takes additions while another thread waits on it), and a timer wakes the thread only when it is due
    before every pending one (the thread sleeps until the earliest deadline anyway). Each task registers an exit
    watch and two timers; waking the thread for each was three pipe writes and three thread switches per task.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._lock = threading.Lock()
        self._watches: dict[int, Callback] = {}  # pidfd → callback, until the process has exited
        self._timers: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="reactor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join(timeout=5)
        with self._lock:
            for pidfd in self._watches:
                os.close(pidfd)
            self._watches.clear()
        self._epoll.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def watch_exit(self, pid: int, callback: Callback) -> None:
        """Call ``callback`` once process ``pid`` has exited (at once if it is already gone)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.call_later(0, callback)
            return
        with self._lock:
            if self._stopping:
                os.close(pidfd)
                return
            self._watches[pidfd] = callback
            # One-shot: a pidfd stays readable once its process exited; the reactor closes it after the call.
            self._epoll.register(pidfd, select.EPOLLIN | select.EPOLLONESHOT)

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Call ``callback`` after ``delay`` seconds, unless the returned timer is cancelled first."""
        timer = Timer(time.monotonic() + max(0.0, delay), callback)
        with self._lock:
            earliest = not self._timers or timer.deadline < self._timers[0][0]
            heapq.heappush(self._timers, (timer.deadline, next(self._counter), timer))
        if earliest:  # the thread may be sleeping until a later deadline: it must look again
            self._wake()
        return timer

    @property
    def watched(self) -> int:
        """How many process watches are registered (for debugging and tests)."""
        with self._lock:
            return len(self._watches)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wake-up is already pending) or closed at shutdown

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    break
                timeout = -1.0
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
            try:
                ready = self._epoll.poll(timeout)
            except InterruptedError:
                continue
            for fd, _events in ready:
                if fd == self._wake_read:
                    try:
                        while os.read(self._wake_read, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                with self._lock:
                    callback = self._watches.pop(fd, None)
                    if callback is not None:
                        self._epoll.unregister(fd)
                        os.close(fd)
                if callback is not None:
                    self._invoke(callback)
            self._run_due_timers()

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        due: list[Timer] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for timer in due:
            callback = timer.callback
            if callback is not None and not timer.cancelled:
                self._invoke(callback)

    @staticmethod
    def _invoke(callback: Callback) -> None:
        try:
            callback()
        except Exception:  # a callback must not take the reactor down with it
            logger.exception("reactor callback failed")
