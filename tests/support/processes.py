"""Which processes a task left: tests check that a process group is empty after cancel, timeout or shutdown,
and that no process an agent CLI's model started (a ``sleep <marker>``) outlives the task."""

from __future__ import annotations

from pathlib import Path

from host_runner.run.stopping import group_members

__all__ = ["pids_in_group", "sleepers"]


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return group_members({pgid})


def sleepers(marker: str) -> list[int]:
    """Processes running ``sleep <marker>`` (a model's command), wherever they are."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"sleep" in argv[0] and marker.encode() in argv:
                found.append(int(entry.name))
    return found
