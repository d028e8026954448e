"""Where a task's process works, prepared before it starts and cleaned after it ends.

``prepare`` and ``cleanup`` may block (git, file system), so the TaskActor calls them from helper threads.
``record_fields`` are what the task record keeps once the workspace is prepared (persisted with the ``running``
transition, so that a runner restarted later can still clean up), and ``cleanup`` returns the fields it wants
on the final record (the worktree mode reports the work it saved and what it removed). Which workspace a run
gets is its execution mode's choice (host_runner.modes); the git worktree is in worktrees.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from host_runner.run.process_group import RunFiles
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
    """``shared-workspace``: the project root itself; the lock paths keep other tasks off the same files."""

    def __init__(self, project_root: str) -> None:
        self.path = Path(project_root)

    def prepare(self) -> Path:
        if not self.path.is_dir():
            raise WorkspaceError(f"project_root {self.path} is not a directory any more")
        return self.path

    def record_fields(self) -> dict[str, Any]:
        return {}

    def cleanup(self) -> dict[str, Any]:
        return {}
