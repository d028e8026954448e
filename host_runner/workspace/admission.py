"""Admitting a submission: what it claims, and what the world outside the runner says about it.

:func:`admission_for` may ask git (a few milliseconds per call, each bounded by a timeout), so it runs in the
API's request thread, never in an actor: after the supervisor said the submission is not a retry of a known
run (a retry is answered with the existing record even when its own worktree now fills the path), and
before the supervisor asks the WorktreeRegistryActor to reserve the claims.
"""

from __future__ import annotations

from host_runner.domain.claims import Admission, claims_for
from host_runner.domain.submission import TaskRequest
from host_runner.workspace.worktrees import inspect_worktree_request


def admission_for(request: TaskRequest) -> Admission:
    """Check the submission against the file system and git; raise ValidationError naming the field."""
    if request.execution_mode == "isolated-worktree":
        return inspect_worktree_request(request)
    return Admission(claims_for(request))
