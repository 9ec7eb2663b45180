"""The lanes a router's commit hands to its own process's idle deliverers (router.Takers).

A commit leases the lanes it makes due for this process's idle deliverers in the same step, so
they start at once. Each handed lane has a lease token of its own (the hand-off's token and
'.n'), so a claim that waited too long can never renew a lease somebody else holds by then; and
a commit holds the room it was given until it says what it handed, as several partitions'
commits may be under way at once.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time

from bridge.adapters.redis.codec import Claim
from bridge.adapters.redis.store import Store, handed_token

log = logging.getLogger("bridge.worker")


class HandOffs:
    """The hand-offs of one worker's deliverers (a part of Deliverers)."""

    name: str
    store: Store
    lease_ms: int
    _idle: collections.deque[asyncio.Event]

    def _init_handoffs(self) -> None:
        self._handoffs = itertools.count()
        # Each handed lane with its own lease token, and when it was handed.
        self._handed: collections.deque[tuple[Claim, str, float]] = collections.deque()
        self._reserved = 0  # idle deliverers held for hand-offs being committed now

    def _wake_one(self) -> None:
        raise NotImplementedError

    def room(self) -> int:
        """How many handed lanes would be started on at once: the idle deliverers not yet
        roused for one, nor held for a commit under way."""
        return max(0, len(self._idle) - len(self._handed) - self._reserved)

    def reserve(self) -> tuple[str, int]:
        """A lease token for one commit's hand-off, and the room held for it until take()."""
        room = self.room()
        self._reserved += room
        return f"{self.name}:h{next(self._handoffs)}", room

    def take(self, token: str, reserved: int, claims: list[Claim]) -> None:
        """Lanes leased by the router's commit for token (the nth for handed_token(token, n)):
        one idle deliverer each; the rest of the reserved room is given back."""
        self._reserved = max(0, self._reserved - reserved)
        now = time.monotonic()
        for n, claim in enumerate(claims):
            self._handed.append((claim, handed_token(token, n), now))
            self._wake_one()

    async def _next_handed(self) -> tuple[Claim, str] | None:
        """A handed lane to deliver, and its lease token, if any. One that waited a third of its
        lease (no deliverer was free) has its lease renewed first, and is left if the lease was
        lost meanwhile."""
        while self._handed:
            claim, token, at = self._handed.popleft()
            if time.monotonic() - at < self.lease_ms / 3000:
                return claim, token
            if await self.store.renew_lane_lease(claim.lane, token=token, lease_ms=self.lease_ms):
                return claim, token
            log.warning("handed lane lease lost item=%s", claim.item_id)
        return None
