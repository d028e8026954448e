"""Follows an agent's stdout file as it grows and hands the parsed frames to a callback, from a helper thread.

The agent writes straight to its log file (the runner holds no pipe to it, so the agent survives a runner
restart); this thread reads the file from a given offset in chunks, polling when it has caught up, and never
holds more than one chunk plus the parser's bounded buffer. After the process exited, :meth:`finish` makes it
read to the end of the file and then call ``on_done``, so no frame printed before the exit is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from host_runner.agent.frames import FrameParser

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
POLL_SECONDS = 0.05
#: Batches handed over but not yet acknowledged: bounds what waits in the owner's inbox when the agent prints
#: faster than the owner can persist.
MAX_UNACKNOWLEDGED = 8


class StreamParser(Protocol):
    """What the follower feeds: the agent frame parser, or an agent CLI's JSON Lines reader."""

    offset: int

    def feed(self, data: bytes) -> list[Any]: ...


class OutputFollower:
    """Reads ``path`` from ``offset`` on; ``on_events(events)`` gets each non-empty batch of frames (or of what
    ``parser`` returns, when given one that starts at ``offset``), in order.

    The owner calls :meth:`acknowledge` once per batch it handled; at most :data:`MAX_UNACKNOWLEDGED` batches
    are outstanding, after which reading pauses.
    """

    def __init__(
        self,
        path: Path,
        offset: int,
        on_events: Callable[[list[Any]], None],
        on_done: Callable[[BaseException | None], None],
        *,
        poll_seconds: float = POLL_SECONDS,
        name: str = "output-follower",
        parser: StreamParser | None = None,
    ) -> None:
        self.path = path
        self.parser: StreamParser = parser if parser is not None else FrameParser(offset)
        self.on_events = on_events
        self.on_done = on_done
        self.poll_seconds = poll_seconds
        self._finishing = threading.Event()
        self._stopping = threading.Event()
        self._credits = threading.Semaphore(MAX_UNACKNOWLEDGED)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """The writer has exited: read what is left, then call ``on_done``."""
        self._finishing.set()

    def acknowledge(self) -> None:
        """The owner handled one batch."""
        self._credits.release()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following without calling ``on_done`` (the runner is stopping; the next one resumes)."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            if self._follow():
                return
        except Exception as exc:  # reported to the owner, which records it; never a silent dead thread
            logger.exception("following %s failed", self.path)
            error = exc
        self.on_done(error)

    def _follow(self) -> bool:
        """Read until finished (False) or stopped (True)."""
        with open(self.path, "rb") as handle:
            handle.seek(self.parser.offset)
            while not self._stopping.is_set():
                # Sample "finishing" before reading: only a read that started after the exit sees everything.
                finishing = self._finishing.is_set()
                chunk = handle.read(CHUNK_BYTES)
                if chunk:
                    events = self.parser.feed(chunk)
                    if events:
                        while not self._credits.acquire(timeout=self.poll_seconds):
                            if self._stopping.is_set():
                                return True
                        self.on_events(events)
                    continue
                if finishing:
                    return False
                self._finishing.wait(self.poll_seconds)
        return True
