"""How the supervisor shows tasks to reads: queue positions, and the live tails of a running task's output
(pure functions over what the supervisor owns, so that its module keeps to admission and lifecycle)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from host_runner.domain.record import TaskRecord
from host_runner.run.process_group import RunFiles, read_tail

Key = tuple[str, str]


def queue_positions(queue: Iterable[Key], groups: Mapping[Key, str | None]) -> dict[Key, dict[str, int]]:
    """``queue_position``: 1 + the queued tasks submitted before it; ``group_queue_position``: the same among the
    queued tasks of its agent group."""
    positions: dict[Key, dict[str, int]] = {}
    per_group: Counter[str] = Counter()
    for index, key in enumerate(queue, 1):
        positions[key] = {"queue_position": index}
        group = groups[key]
        if group is not None:
            per_group[group] += 1
            positions[key]["group_queue_position"] = per_group[group]
    return positions


def position_of_last(queue_length: int, groups: Mapping[Key, str | None], group: str | None) -> dict[str, int]:
    """What :func:`queue_positions` gives the last queued task (one just submitted), without walking the queue:
    submitting a long queue would otherwise cost a walk of the queue per submit."""
    position = {"queue_position": queue_length}
    if group is not None:
        position["group_queue_position"] = sum(1 for other in groups.values() if other == group)
    return position


def with_live_tails(record: TaskRecord, runs_dir: Path) -> TaskRecord:
    """While a task runs its output is only on disk: show the current tails."""
    if record.status != "running" or not record.log_dir:
        return record
    files = RunFiles.for_run(runs_dir, record.task_id, record.run_id)
    return replace(record, stdout=read_tail(files.readable_stdout), stderr=read_tail(files.stderr))


def group_field(group: str | None) -> dict[str, str]:
    return {"group": group} if group is not None else {}


__all__ = ["group_field", "position_of_last", "queue_positions", "with_live_tails"]
