"""Stopping a task's processes, for cancel, timeout and ``HOST_RUNNER_SHUTDOWN=cancel``: signal its whole process
group, and the daemons that left the group with ``setsid`` (the wrapper is their subreaper, so they are still
descendants of the group's leader).

The escalation itself (TERM, the grace period, KILL) is timed by whoever stops the run: a launcher
(:mod:`host_runner.run.launchers`) or the task actor, from the reactor's timers, never by sleeping here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now names somebody else's group: ours is gone
        return False


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the /proc/PID/stat fields after the command name) of every process that is not a zombie:
    ``fields[0]`` is the state, ``fields[1]`` the parent pid, ``fields[2]`` the process group."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry), fields


def _stat_fields(pid: int) -> list[str] | None:
    """The /proc/PID/stat fields after the command name, None if the process is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` from /proc/PID/task/*/children, None where the kernel does not offer that file."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # gone
    for thread in threads:
        try:
            found.extend(int(child) for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split())
        except FileNotFoundError:
            if not Path(f"/proc/{pid}/task/{thread}").exists():
                continue  # the thread ended meanwhile
            return None  # no CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return found


def escaped_descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` outside its process group: daemons a task's command started with ``setsid``.

    The wrapper is a child subreaper, so they stay its descendants even once their parent exited. The tree is
    walked down from ``pid`` (a few reads for a usual task), not over every process of the machine: a cancel of
    1,000 tasks must not read /proc 1,000 times over."""
    fields = _stat_fields(pid)
    if fields is None or int(fields[2]) != pid:  # not (or no longer) the leader of its group: touch nothing
        return []
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        if children is None:
            return _escaped_descendants_by_scan(pid)
        for child in children:
            child_fields = _stat_fields(child)
            if child_fields is None:
                continue
            todo.append(child)
            if int(child_fields[2]) != pid:
                found.append(child)
    return found


def _escaped_descendants_by_scan(pid: int) -> list[int]:
    """:func:`escaped_descendants` over every process, for kernels without /proc/PID/task/TID/children."""
    children: dict[int, list[int]] = {}
    groups: dict[int, int] = {}
    for process, fields in _live_processes():
        children.setdefault(int(fields[1]), []).append(process)
        groups[process] = int(fields[2])
    if groups.get(pid) != pid:
        return []
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        todo.extend(children.get(child, ()))
        if groups[child] != pid:
            found.append(child)
    return found


def signal_tree(pgid: int, signum: int) -> bool:
    """Signal group ``pgid`` (led by the wrapper) and every descendant of its leader that left the group."""
    for pid in escaped_descendants(pgid):
        try:
            os.kill(pid, signum)
        except OSError:
            pass
    return signal_group(pgid, signum)


def group_members(pgids: set[int] | frozenset[int]) -> list[int]:
    """Live (non-zombie) processes whose process group is one of ``pgids``, read from /proc."""
    return [process for process, fields in _live_processes() if int(fields[2]) in pgids]


__all__ = ["escaped_descendants", "group_alive", "group_members", "signal_group", "signal_tree"]
