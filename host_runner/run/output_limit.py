"""``HOST_RUNNER_MAX_OUTPUT_BYTES``: a run's stdout or stderr past the limit stops the run.

The task's processes write their output files directly (no pipe goes through the runner), so the limit is
enforced by watching the files' sizes. One :class:`OutputSweep` per reactor checks every running task's two files
on a single reactor timer (not a timer per run: at 5,000 runs those were 10,000 timer callbacks and 20,000
``stat`` calls a second on the reactor thread, which delayed every exit notification and cost the idle runner
CPU, issue 22). The sweep goes through the runs a slice per tick:

- **Guarantee**: each run's files are looked at about every ``max(CHECK_INTERVAL_SECONDS, runs /
  MAX_RUNS_PER_SECOND)`` seconds (0.5 s up to 1,000 runs, 2.5 s at 5,000), a new run first within that time of
  its start; once one is over the limit, ``on_exceeded`` is called once with :func:`exceeded_message`.
- What a fast writer adds between two looks (and during the stop's grace period) is cut off again when the run
  has exited (:meth:`OutputWatch.cancel`), so what stays readable is the first ``limit`` bytes either way.

The run's actor then stops it as it cancels one. (RLIMIT_FSIZE on the child would cap every file the task
writes, its work included, and end only the writing process with SIGXFSZ.)
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable

from host_runner.run.process_group import RunFiles
from host_runner.run.reactor import Reactor, Timer

#: How often each run's files are looked at while there are few runs.
CHECK_INTERVAL_SECONDS = 0.5
#: The sweep's tick: a slice of the runs is checked on each.
TICK_SECONDS = 0.1
#: The most runs (two ``stat`` calls each, a few microseconds) checked per second, whatever their number: with
#: more runs than this per interval, a full pass takes longer instead of taking more of the reactor thread.
MAX_RUNS_PER_SECOND = 2000

__all__ = ["CHECK_INTERVAL_SECONDS", "MAX_RUNS_PER_SECOND", "OutputSweep", "OutputWatch", "exceeded_message",
           "sweep_of"]


def exceeded_message(limit: int, stream: str) -> str:
    return f"output limit exceeded ({limit} bytes on {stream})"


class OutputWatch:
    """One run's two output files, checked by its reactor's :class:`OutputSweep` until :meth:`cancel` or the
    first excess."""

    def __init__(self, reactor: Reactor, files: RunFiles, limit: int, on_exceeded: Callable[[str], None]) -> None:
        self.sweep = sweep_of(reactor)
        self.paths = (("stdout", str(files.stdout)), ("stderr", str(files.stderr)))
        self.limit = limit
        self.on_exceeded = on_exceeded
        self.stopped = False
        self.exceeded: str | None = None  # the path found over the limit

    def start(self) -> OutputWatch:
        if self.limit > 0:
            self.sweep.add(self)
        return self

    def cancel(self) -> None:
        """No more checks, like a reactor :class:`Timer`'s cancel; the TaskActor calls it once the process has
        exited, so a file found over the limit is cut back to its first ``limit`` bytes here (what a fast writer
        added between two looks and during the stop's grace period is not kept)."""
        exceeded = self.sweep.remove(self)
        if exceeded is not None:
            try:
                os.truncate(exceeded, self.limit)
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


class OutputSweep:
    """Every watched run of one reactor, checked a slice per tick on one timer that runs only while there are
    runs to watch. Watches are added and removed from the actors' threads; checks run in the reactor's."""

    def __init__(self, reactor: Reactor, interval: float = CHECK_INTERVAL_SECONDS, tick: float = TICK_SECONDS,
                 max_per_second: int = MAX_RUNS_PER_SECOND) -> None:
        self.reactor = reactor
        self.interval = interval
        self.tick = tick
        self.max_per_tick = max(1, int(max_per_second * tick))
        self.lock = threading.Lock()
        self.watches: dict[int, OutputWatch] = {}  # by id(), in the order they came
        self.timer: Timer | None = None
        self.todo: list[OutputWatch] = []  # what is left of the current pass (reactor thread only)
        self.added: list[OutputWatch] = []  # added since the current pass began: looked at within it, at its end
        self.ticks_left = 0  # ticks before the next pass may begin (so a pass never comes sooner than interval)
        self.checked = 0  # runs looked at so far (for tests and debugging)

    def add(self, watch: OutputWatch) -> None:
        with self.lock:
            self.watches[id(watch)] = watch
            self.added.append(watch)
            if self.timer is None:
                self.timer = self.reactor.call_later(self.tick, self._on_tick)

    def remove(self, watch: OutputWatch) -> str | None:
        """Stop checking ``watch``; the path it was found over the limit at, if it was."""
        with self.lock:
            watch.stopped = True
            self.watches.pop(id(watch), None)
            return watch.exceeded

    def __len__(self) -> int:
        return len(self.watches)

    def _on_tick(self) -> None:  # in the reactor thread: quick, never raises
        with self.lock:
            added, self.added = self.added, []
        self.todo.extend(added)
        if not self.todo and self.ticks_left <= 0:
            with self.lock:
                self.todo, self.added = list(self.watches.values()), []
            self.ticks_left = max(1, round(self.interval / self.tick))
        # Spread what is left over the pass's ticks left (runs added meanwhile included), never above the rate.
        per_tick = min(self.max_per_tick, math.ceil(len(self.todo) / max(1, self.ticks_left)))
        self.ticks_left -= 1
        batch, self.todo = self.todo[:per_tick], self.todo[per_tick:]
        for watch in batch:
            if watch.stopped:
                continue
            self.checked += 1
            found = watch.over()
            if found is None:
                continue
            with self.lock:
                if watch.stopped:  # cancelled meanwhile: the run is over anyway
                    continue
                watch.stopped, watch.exceeded = True, found[1]
                self.watches.pop(id(watch), None)
            watch.on_exceeded(exceeded_message(watch.limit, found[0]))
        with self.lock:
            if self.watches or self.todo:
                self.timer = self.reactor.call_later(self.tick, self._on_tick)
            else:
                self.timer, self.ticks_left = None, 0


_sweeps: weakref.WeakKeyDictionary[Reactor, OutputSweep] = weakref.WeakKeyDictionary()
_sweeps_lock = threading.Lock()


def sweep_of(reactor: Reactor) -> OutputSweep:
    """The reactor's one sweep (made on first use)."""
    with _sweeps_lock:
        sweep = _sweeps.get(reactor)
        if sweep is None:
            sweep = _sweeps[reactor] = OutputSweep(reactor)
        return sweep
