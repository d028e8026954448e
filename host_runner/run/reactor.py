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
import selectors
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
    """Process-exit and timer notifications from a single daemon thread."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending_watches: list[tuple[int, Callback]] = []
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
        self._selector.close()
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
            self._pending_watches.append((pidfd, callback))
        self._wake()

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Call ``callback`` after ``delay`` seconds, unless the returned timer is cancelled first."""
        timer = Timer(time.monotonic() + max(0.0, delay), callback)
        with self._lock:
            heapq.heappush(self._timers, (timer.deadline, next(self._counter), timer))
            # Woken only when this timer is now the first: otherwise the loop already sleeps until an earlier
            # deadline and looks at the heap again then. (Most timers are not first: a task's timeout, its kill
            # after the grace period; a wake-up each was a pipe write and a thread switch per call, issue 22.)
            first = self._timers[0][2] is timer
        if first:
            self._wake()
        return timer

    @property
    def watched(self) -> int:
        """How many process watches are registered (for debugging and tests)."""
        return len(self._selector.get_map()) - 1

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
                watches, self._pending_watches = self._pending_watches, []
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for pidfd, callback in watches:
                self._selector.register(pidfd, selectors.EVENT_READ, callback)
            for key, _ in self._selector.select(timeout):
                if key.fd == self._wake_read:
                    try:
                        while os.read(self._wake_read, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                self._selector.unregister(key.fd)
                os.close(key.fd)
                self._invoke(key.data)
            self._run_due_timers()
        for key in list(self._selector.get_map().values()):
            if key.fd != self._wake_read:
                os.close(key.fd)

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
