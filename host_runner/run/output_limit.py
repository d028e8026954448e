"""``HOST_RUNNER_MAX_OUTPUT_BYTES``: a run's stdout or stderr past the limit stops the run.

The task's processes write their output files directly (no pipe goes through the runner), so the limit is
enforced by watching the files' sizes: every :data:`CHECK_INTERVAL_SECONDS` the reactor thread stats both
files (two ``stat`` calls, a few microseconds) and, once one is over the limit, calls ``on_exceeded`` once
with :func:`exceeded_message`.
The run's actor then stops it as it cancels one; what was written stays readable. (RLIMIT_FSIZE on the child
would cap every file the task writes, its work included, and end only the writing process with SIGXFSZ.)
"""

from __future__ import annotations

import os
from collections.abc import Callable

from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor, Timer

CHECK_INTERVAL_SECONDS = 0.5

__all__ = ["CHECK_INTERVAL_SECONDS", "OutputWatch", "exceeded_message"]


def exceeded_message(limit: int, stream: str) -> str:
    return f"output limit exceeded ({limit} bytes on {stream})"


class OutputWatch:
    """Checks a run's two output files on the reactor's timer until :meth:`cancel` or the first excess."""

    def __init__(self, reactor: Reactor, files: RunFiles, limit: int, on_exceeded: Callable[[str], None],
                 interval: float = CHECK_INTERVAL_SECONDS) -> None:
        self.reactor = reactor
        self.paths = (("stdout", str(files.stdout)), ("stderr", str(files.stderr)))
        self.limit = limit
        self.on_exceeded = on_exceeded
        self.interval = interval
        self.timer: Timer | None = None
        self.stopped = False
        self.exceeded: str | None = None  # the path found over the limit

    def start(self) -> OutputWatch:
        if self.limit > 0:
            self.timer = self.reactor.call_later(self.interval, self._check)
        return self

    def cancel(self) -> None:
        """No more checks, like a reactor :class:`Timer`'s cancel; the TaskActor calls it once the process has
        exited, so a file found over the limit is cut back to its first ``limit`` bytes here (what a fast writer
        added during the check interval and the stop's grace period is not kept)."""
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
        if self.exceeded is not None:
            try:
                os.truncate(self.exceeded, self.limit)
            except OSError:
                pass

    def over(self) -> tuple[str, str] | None:
        """The first stream (and its path) whose file is over the limit now, or None."""
        for stream, path in self.paths:
            try:
                if os.stat(path).st_size > self.limit:
                    return stream, path
            except OSError:
                pass
        return None

    def _check(self) -> None:  # in the reactor thread: quick, never raises
        if self.stopped:
            return
        found = self.over()
        if found is not None:
            self.stopped = True
            self.exceeded = found[1]
            self.on_exceeded(exceeded_message(self.limit, found[0]))
        else:
            self.timer = self.reactor.call_later(self.interval, self._check)
