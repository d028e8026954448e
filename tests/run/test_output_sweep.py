"""The output limit's sweep (issue 22): one reactor timer for every watched run, a bounded number of runs looked at
per second whatever their number, and an excess still found and reported once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_runner.run.output_limit import OutputSweep, OutputWatch, sweep_of
from host_runner.run.process_group import RunFiles
from support.reactors import CountingReactor, running_reactor
from support.waiting import wait_for

@pytest.fixture
def reactor() -> Iterator[CountingReactor]:
    yield from running_reactor()



def run_files(tmp_path: Path, name: str, size: int = 0) -> RunFiles:
    files = RunFiles(tmp_path / name)
    files.directory.mkdir(parents=True)
    files.stdout.write_bytes(b"x" * size)
    return files


def test_one_timer_serves_every_run_and_stops_when_none_is_left(reactor: CountingReactor, tmp_path: Path):
    watches = [OutputWatch(reactor, run_files(tmp_path, f"r{n}"), 100, lambda message: None).start()
               for n in range(300)]
    time.sleep(1.05)
    # A timer per run and check would be 300 runs x 2 checks a second = 600 timers; the sweep sets one per tick.
    assert reactor.timers_set <= 12, reactor.timers_set
    sweep = sweep_of(reactor)
    assert len(sweep) == 300 and sweep.checked >= 300  # every run looked at within the interval
    for watch in watches:
        watch.cancel()
    assert len(sweep) == 0
    wait_for(lambda: sweep.timer is None, timeout=2)
    set_before = reactor.timers_set
    time.sleep(0.3)
    assert reactor.timers_set == set_before  # nothing to watch: no ticks


def test_an_excess_is_reported_once_and_cut_back_when_the_run_is_over(reactor: CountingReactor, tmp_path: Path):
    reported: list[str] = []
    files = run_files(tmp_path, "big", 10)
    watch = OutputWatch(reactor, files, 100, reported.append).start()
    files.stderr.write_bytes(b"y" * 500)
    wait_for(lambda: reported, timeout=3)
    time.sleep(0.3)
    assert reported == ["output limit exceeded (100 bytes on stderr)"]
    watch.cancel()
    assert files.stderr.stat().st_size == 100


def test_the_runs_looked_at_per_second_are_bounded(reactor: CountingReactor, tmp_path: Path):
    sweep = OutputSweep(reactor, interval=0.5, tick=0.05, max_per_second=200)
    for n in range(1000):
        watch = OutputWatch(reactor, run_files(tmp_path, f"r{n}"), 100, lambda message: None)
        watch.sweep = sweep
        watch.start()
    time.sleep(1.0)
    # Unbounded, 1,000 runs every 0.5 s would be ~2,000 looks; the bound allows ~200 a second.
    assert 100 <= sweep.checked <= 260, sweep.checked
    found: list[str] = []
    late = run_files(tmp_path, "late", 1000)
    watch = OutputWatch(reactor, late, 100, found.append)
    watch.sweep = sweep
    watch.start()
    wait_for(lambda: found, timeout=1001 / 200 + 2)  # within one full pass at the bounded rate
