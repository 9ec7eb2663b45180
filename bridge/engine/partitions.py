"""The partitions a router leads: each its own stream, lease and marker (adapters/redis/partitions.py
says which events go where).

Workers share the partitions: each leads at most its share, ceil(partitions / workers alive),
so two workers decide in parallel, and a worker that joins is handed some at once (the others
step down from what is over their share, between two batches). A worker that dies stops
beating, and its leases are taken over within seconds, as a single router's lease always was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bridge.adapters.redis.keys import Keys


@dataclass(frozen=True)
class Partition:
    """One partition of the inbound stream, as its router sees it."""

    index: int
    stream: str  # its inbound stream
    # Partition 0 fires the due timers and runs the standing pass (for the whole deployment).
    fires_timers: bool

    @classmethod
    def of(cls, keys: Keys, index: int) -> Partition:
        return cls(index=index, stream=keys.inbound_of(index), fires_timers=index == 0)

    def marker(self, entry_id: str) -> str:
        """What names an entry's effects and deliveries (lane items, attempts, the metadata that
        finds an earlier post): unique across partitions, whose streams may give equal entry
        ids. Partition 0's is the entry id itself, as before partitions."""
        return entry_id if self.index == 0 else f"p{self.index}/{entry_id}"


def share_of(partitions: int, alive: int) -> int:
    """How many partitions one of alive workers leads at most."""
    return math.ceil(partitions / max(1, alive))


def order_for(name: str, partitions: int) -> list[int]:
    """The order a worker tries the partitions in: from one picked by its name, so that workers
    starting together do not all reach for the same ones first."""
    start = sum(name.encode()) % max(1, partitions)
    return [(start + i) % partitions for i in range(partitions)]
