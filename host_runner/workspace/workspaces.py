"""Where a task's process works, prepared before it starts and cleaned after it ends.

``prepare`` and ``cleanup`` may block (git, file system), so the TaskActor calls them from helper threads.
``record_fields`` are what the task record keeps once the workspace is prepared (persisted with the ``running``
transition, so that a runner restarted later can still clean up), and ``cleanup`` returns the fields it wants
on the final record (the worktree mode reports the work it saved and what it removed). Which workspace a run
gets is its execution mode's choice (host_runner.modes); the git worktree is in worktrees.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host_runner.run.process_group import RunFiles
from host_runner.workspace import lock_check
from host_runner.workspace.interface import WorkspaceError


class ScratchWorkspace:
    """``no-workspace``: a private empty directory in the run directory, removed afterwards (logs stay)."""

    def __init__(self, files: RunFiles) -> None:
        self.path = files.scratch

    def prepare(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def record_fields(self) -> dict[str, Any]:
        return {}

    def cleanup(self) -> dict[str, Any]:
        try:
            self.path.rmdir()  # usually still empty: one syscall instead of rmtree's walk
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(self.path, ignore_errors=True)
        return {}


class SharedWorkspace:
    """``shared-workspace``: the project root itself; the lock paths keep other tasks off the same files, and
    the run is checked afterwards for changes outside them (host_runner/workspace/lock_check.py)."""

    def __init__(self, project_root: str, files: RunFiles, lock_paths: Sequence[str] = ()) -> None:
        self.path = Path(project_root)
        self.files = files
        self.lock_paths = tuple(lock_paths)

    def prepare(self) -> Path:
        if not self.path.is_dir():
            raise WorkspaceError(f"project_root {self.path} is not a directory any more")
        lock_check.record_start(self.path, self.files)  # before the command may begin
        return self.path

    def check_locks(self, held: Sequence[str], reported: Sequence[str]) -> dict[str, Any]:
        """Record fields saying which paths the run changed outside its own lock paths and the paths in ``held``
        (real paths other tasks held while it was active). Blocking (git): for the ending helper thread."""
        own = [os.path.realpath(path) for path in self.lock_paths]
        return lock_check.check(self.path, self.files, [*own, *held], reported)

    def record_fields(self) -> dict[str, Any]:
        return {}

    def cleanup(self) -> dict[str, Any]:
        return {}
