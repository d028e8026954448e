"""What every workspace kind offers (:class:`Workspace`), and the one error preparing one may raise.

The kinds themselves live in host_runner/workspace/workspaces.py (scratch, shared) and
host_runner/workspace/worktrees.py (isolated worktree); both build on this module, which builds on neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class WorkspaceError(Exception):
    """The workspace could not be prepared; the message is recorded on the task."""


class Workspace(Protocol):
    def prepare(self) -> Path:
        """Make the working directory ready and return it."""

    def record_fields(self) -> dict[str, Any]:
        """Record fields describing what prepare made (empty when there is nothing to remember)."""

    def cleanup(self) -> dict[str, Any]:
        """Remove what prepare made; return record fields describing it. Must not raise."""
