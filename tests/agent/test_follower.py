"""The stdout follower: frames from a growing file in order, nothing lost at the end, bounded hand-over, and a
reader that fails still reports that it is done."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from host_runner.agent.follower import MAX_UNACKNOWLEDGED, OutputFollower
from host_runner.agent.frames import Frame, FrameEvent, render_frame
from support.waiting import wait_for


class Collector:
    def __init__(self, acknowledge: bool = True) -> None:
        self.results: list[object] = []
        self.batches = 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.acknowledge = acknowledge
        self.follower: OutputFollower | None = None

    def on_events(self, events: list[FrameEvent]) -> None:
        self.batches += 1
        self.results += [event.data["result"] for event in events if isinstance(event, Frame)]
        if self.acknowledge and self.follower is not None:
            self.follower.acknowledge()

    def on_done(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()

    def follow(self, path: Path, offset: int = 0) -> OutputFollower:
        self.follower = OutputFollower(path, offset, self.on_events, self.on_done, poll_seconds=0.01)
        self.follower.start()
        return self.follower


def test_follows_a_growing_file_and_reads_everything_before_finishing(tmp_path: Path):
    path = tmp_path / "stdout.log"
    path.write_bytes(b"")
    collector = Collector()
    follower = collector.follow(path)
    with open(path, "ab") as out:
        for index in range(20):
            data = render_frame({"result": index})
            out.write(data[:10])
            out.flush()
            out.write(data[10:] + b"log line\n")
            out.flush()
        # Written right before the "exit": finish() must still deliver them.
        out.write(b"".join(render_frame({"result": f"last {index}"}) for index in range(5)))
    follower.finish()
    assert collector.done.wait(10)
    assert collector.error is None
    assert collector.results == list(range(20)) + [f"last {index}" for index in range(5)]


def test_at_most_a_bounded_number_of_batches_is_unacknowledged(tmp_path: Path):
    path = tmp_path / "stdout.log"
    # Each frame is larger than one read, so each completes in its own batch.
    path.write_bytes(b"".join(render_frame({"result": str(index) * 70_000}) for index in range(30)))
    collector = Collector(acknowledge=False)
    follower = collector.follow(path)
    follower.finish()
    wait_for(lambda: collector.batches == MAX_UNACKNOWLEDGED, what="the first batches")
    time.sleep(0.3)
    assert collector.batches == MAX_UNACKNOWLEDGED and not collector.done.is_set()  # paused, not racing ahead
    while not collector.done.is_set():
        follower.acknowledge()
        time.sleep(0.005)
    assert len(collector.results) == 30


def test_a_missing_file_reports_done_with_the_error_and_stop_reports_nothing(tmp_path: Path):
    collector = Collector()
    collector.follow(tmp_path / "absent.log")
    assert collector.done.wait(10)
    assert isinstance(collector.error, FileNotFoundError)

    path = tmp_path / "stdout.log"
    path.write_bytes(render_frame({"result": "one"}))
    stopped = Collector()
    follower = stopped.follow(path)
    wait_for(lambda: stopped.results == ["one"])
    follower.stop()
    assert not stopped.done.is_set()


def test_starts_at_the_given_offset(tmp_path: Path):
    path = tmp_path / "stdout.log"
    first = render_frame({"result": "first"})
    path.write_bytes(first + render_frame({"result": "second"}))
    collector = Collector()
    collector.follow(path, offset=len(first)).finish()
    assert collector.done.wait(10)
    assert collector.results == ["second"]
