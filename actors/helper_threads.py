"""Threads for the blocking work actors hand off (starting a run, cleaning up after it), reused between jobs.

Every run used to start two short-lived threads of its own (one to start it, one to clean up after it). Starting a
thread costs a stack mapping, a clone and the interpreter's bookkeeping, twice per task; here a job goes to a
thread that is idle, and a new thread starts only when none is, so there is never a queue: a slow job (a
``post-checkout`` hook, an image pull) never delays another. Threads idle for :data:`IDLE_SECONDS` end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "HelperThreads", "helper_threads"]

logger = logging.getLogger(__name__)

#: How long a helper thread waits for another job before it ends.
IDLE_SECONDS = 30.0


class HelperThreads:
    """Runs each job at once in a thread of its own for the job's duration: an idle one, else a new one."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, less the jobs already put for them
        self._idle_seconds = idle_seconds

    def run(self, job: Callable[[], None]) -> None:
        """Start ``job`` now in another thread. What ``job`` raises is logged (the thread goes on serving)."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                self._jobs.put(job)  # an idle thread takes it (every put is matched by a waiting thread)
                return
        threading.Thread(target=self._serve, args=(job,), name="actor-helper", daemon=True).start()

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except Exception:
                logger.exception("a helper thread's job failed")
            del job  # a finished job's closure (a workspace, a launcher) must not live on in an idle thread
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:  # a job put after the timeout but before this lock is still ours to run
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return

    @property
    def idle(self) -> int:
        with self._lock:
            return self._idle


#: The process's helper threads, shared by every actor.
helper_threads = HelperThreads()
