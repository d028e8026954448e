"""The WorktreeRegistryActor: the single owner of reservations (lock paths, worktree paths, branches).

Every active task holds claims from submit until it is terminal. A new submission whose claims collide with
a held one is refused with :class:`Conflict` naming the holder; because one actor owns every claim, two
submissions racing for the same path cannot both win.
"""

from __future__ import annotations

import logging
import os

from actors.base import Actor, handles
from actors.messages import CheckClaims, Release, Reservations, Reserve
from host_runner.domain.claims import Claim
from host_runner.domain.errors import Conflict

logger = logging.getLogger(__name__)

Owner = tuple[str, str]


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

    @handles(Reserve, asked=True)
    def on_reserve(self, message: Reserve) -> None:
        self._refuse_collisions(message.claims, message.owner)
        if message.verify is not None:
            message.verify()  # checks a snapshot taken by the sender: no git call in this actor
        if message.claims:
            self._claims[message.owner] = self._claims.get(message.owner, ()) + message.claims

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
        self._claims.pop(message.owner, None)

    @handles(Reservations, asked=True)
    def on_reservations(self, message: Reservations) -> list[tuple[Owner, Claim]]:
        return [(owner, claim) for owner, claims in self._claims.items() for claim in claims]

    def describe(self) -> dict[str, object]:
        return {"reservations": [
            {"task_id": owner[0], "run_id": owner[1], "kind": claim.kind, "label": claim.label, "key": claim.key}
            for owner, claims in self._claims.items() for claim in claims
        ]}
