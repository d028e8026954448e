"""Which processes a task left: tests check that a process group is empty after cancel, timeout or shutdown."""

from __future__ import annotations

from host_runner.run.stopping import group_members

__all__ = ["pids_in_group"]


def pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return group_members({pgid})
