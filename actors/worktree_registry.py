"""The WorktreeRegistryActor: the single owner of reservations (lock paths, worktree paths, branches).

Every active task holds claims from submit until it is terminal. A new submission whose claims collide with
a held one is refused with :class:`Conflict` naming the holder; because one actor owns every claim, two
submissions racing for the same path cannot both win.

It also remembers, for as long as some active task reserved its claims before they were released, the claims
released meanwhile: the lock check of a shared-workspace run (:class:`PathsHeldAround`) must not blame a run
for files a task that ended in the meantime changed inside its own locks.
"""

from __future__ import annotations

import logging
import os

from actors.base import Actor, handles
from actors.messages import CheckClaims, HeldAround, PathsHeldAround, Release, Reservations, Reserve
from host_runner.domain.claims import Claim
from host_runner.domain.errors import Conflict

logger = logging.getLogger(__name__)

Owner = tuple[str, str]

#: Released claims remembered for the lock check at most (the oldest go first; a run active across more
#: releases than this may be blamed for paths of the tasks forgotten).
MAX_RELEASED = 50_000


def _paths_collide(first: str, second: str) -> bool:
    """Same path, or one inside the other."""
    if first == second:
        return True
    shorter, longer = sorted((first, second), key=len)
    return longer.startswith(shorter.rstrip(os.sep) + os.sep)


def collides(first: Claim, second: Claim) -> bool:
    if first.kind != second.kind:
        return False
    if first.kind == "path":
        return _paths_collide(first.key, second.key)
    return first.key == second.key


class WorktreeRegistryActor(Actor):
    """Holds claims per owner (task_id, run_id)."""

    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[Owner, tuple[Claim, ...]] = {}
        self._clock = 0  # counts reservations and releases: orders them for PathsHeldAround
        self._since: dict[Owner, int] = {}  # the clock when each owner reserved its first claim
        self._released: list[tuple[int, Owner, tuple[Claim, ...]]] = []  # (clock, owner, claims), oldest first

    @handles(Reserve, asked=True)
    def on_reserve(self, message: Reserve) -> None:
        self._refuse_collisions(message.claims, message.owner)
        if message.verify is not None:
            message.verify()  # checks a snapshot taken by the sender: no git call in this actor
        if message.claims:
            self._claims[message.owner] = self._claims.get(message.owner, ()) + message.claims
            if message.owner not in self._since:
                self._clock += 1
                self._since[message.owner] = self._clock

    @handles(CheckClaims, asked=True)
    def on_check_claims(self, message: CheckClaims) -> None:
        self._refuse_collisions(message.claims, None)

    def _refuse_collisions(self, claims: tuple[Claim, ...], owner_of_claims: Owner | None) -> None:
        for owner, held in self._claims.items():
            if owner == owner_of_claims:
                continue
            for claim in claims:
                for other in held:
                    if collides(claim, other):
                        raise Conflict(
                            f"{claim.label} {claim.key} collides with {other.label} {other.key} "
                            f"held by active task {owner[0]} (run {owner[1]})",
                            holder=owner[0],
                        )

    @handles(Release)
    def on_release(self, message: Release) -> None:
        claims = self._claims.pop(message.owner, None)
        self._since.pop(message.owner, None)
        if claims and self._since:  # some active task reserved before this release: it may need to know
            self._clock += 1
            self._released.append((self._clock, message.owner, claims))
        # Forget what no active task reserved before (each owner only cares about releases after its own since).
        oldest = min(self._since.values(), default=self._clock)
        keep = next((index for index, (clock, _, _) in enumerate(self._released) if clock > oldest),
                    len(self._released))
        del self._released[:max(keep, len(self._released) - MAX_RELEASED)]

    @handles(PathsHeldAround, asked=True)
    def on_paths_held_around(self, message: PathsHeldAround) -> HeldAround:
        since = self._since.get(message.owner, self._clock)
        others = {claim.key for owner, claims in self._claims.items() if owner != message.owner for claim in claims
                  if claim.kind == "path"}
        others.update(claim.key for clock, owner, claims in self._released if clock > since and owner != message.owner
                      for claim in claims if claim.kind == "path")
        own = tuple(claim.key for claim in self._claims.get(message.owner, ()) if claim.kind == "path")
        return HeldAround(own, tuple(sorted(others)))

    @handles(Reservations, asked=True)
    def on_reservations(self, message: Reservations) -> list[tuple[Owner, Claim]]:
        return [(owner, claim) for owner, claims in self._claims.items() for claim in claims]

    def describe(self) -> dict[str, object]:
        return {"reservations": [
            {"task_id": owner[0], "run_id": owner[1], "kind": claim.kind, "label": claim.label, "key": claim.key}
            for owner, claims in self._claims.items() for claim in claims
        ], "released_remembered": len(self._released)}
