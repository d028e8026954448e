"""What the WorktreeRegistryActor tells a lock check: the paths other tasks held at any time while the asking
task was active (released ones too), never those released before it reserved, and nothing kept once no active
task needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.messages import Describe, HeldAround, PathsHeldAround, Release, Reserve
from actors.worktree_registry import WorktreeRegistryActor
from host_runner.domain.claims import Claim


@pytest.fixture
def registry() -> Iterator:
    ref = WorktreeRegistryActor.start()
    yield ref
    ref.stop()


def lock(path: str) -> tuple[Claim, ...]:
    return (Claim("path", path, "lock path"),)


def test_released_claims_are_remembered_for_the_tasks_active_meanwhile(registry):
    registry.ask(Reserve(("early", "r"), lock("/p/early")))
    registry.ask(Reserve(("a", "r"), lock("/p/a")))
    registry.ask(Release(("early", "r")))  # released after a reserved: a may have seen its changes
    registry.ask(Reserve(("b", "r"), lock("/p/b")))
    registry.ask(Reserve(("c", "r"), (Claim("branch", "main of /repo", "branch"), *lock("/p/c"))))
    registry.ask(Release(("b", "r")))
    assert registry.ask(PathsHeldAround(("a", "r"))) == HeldAround(("/p/a",), ("/p/b", "/p/c", "/p/early"))
    assert registry.ask(PathsHeldAround(("c", "r"))) == HeldAround(("/p/c",), ("/p/a", "/p/b"))  # not early's

    registry.ask(Release(("a", "r")))
    registry.ask(Release(("c", "r")))
    assert registry.ask(Describe())["released_remembered"] == 0  # nobody active needs them any more
