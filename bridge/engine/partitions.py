"""The partitions a router leads: each its own stream, lease and marker (adapters/redis/partitions.py
says which events go where).

Workers share the partitions: each leads at most its share, ceil(partitions / workers alive),
so two workers decide in parallel, and a worker that joins is handed some at once (the others
step down from what is over their share, between two batches). A worker that dies stops
beating, and its leases are taken over within seconds, as a single router's lease always was.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from bridge.adapters.redis.heartbeat import BEAT_S
from bridge.adapters.redis.keys import Keys
from bridge.engine.errors import safe_trace

if TYPE_CHECKING:
    from bridge.engine.router import Router

log = logging.getLogger("bridge.worker")


@dataclass(frozen=True)
class Partition:
    """One partition of the inbound stream, as its router sees it."""

    index: int
    stream: str  # its inbound stream

    @classmethod
    def of(cls, keys: Keys, index: int) -> Partition:
        return cls(index=index, stream=keys.inbound_of(index))

    @property
    def fires_timers(self) -> bool:
        """Partition 0 fires the due timers and runs the standing pass (for the whole deployment)."""
        return self.index == 0

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


async def lead_share(router: Router, lease_ms: int) -> None:
    """Lead the router's share of the partitions until it stops: every BEAT_S, take free
    partitions (or those of a worker whose heartbeat stopped) up to the share, and step down from
    any over it (a worker joined). With one partition: lead it, or stand by."""
    store, count = router.store, router.store.partitions
    leading: dict[int, tuple[asyncio.Task[None], asyncio.Event]] = {}
    try:
        while not router.stopping.is_set():
            for index, (task, _) in list(leading.items()):
                if task.done():
                    del leading[index]
            try:
                share = share_of(count, await store.routers_alive()) if count > 1 else 1
                staying = sorted(i for i, (_, down) in leading.items() if not down.is_set())
                for index in staying[share:]:
                    leading[index][1].set()  # over the share: hand it over after this batch
                for index in order_for(router.name, count):
                    if len(leading) >= share:
                        break
                    if index not in leading and await store.acquire_router_lease(
                        router.name, lease_ms, partition=index
                    ):
                        log.info("router leading name=%s partition=%d", router.name, index)
                        down = asyncio.Event()
                        task = asyncio.create_task(_lead_until(router, Partition.of(store.keys, index), down))
                        leading[index] = (task, down)
            except (RedisError, OSError) as exc:
                log.warning("router lost Redis (%s); retrying", type(exc).__name__)
            await router.pause(BEAT_S)
    finally:
        for _, down in leading.values():
            down.set()
        await asyncio.gather(*(task for task, _ in leading.values()), return_exceptions=True)


async def _lead_until(router: Router, partition: Partition, down: asyncio.Event) -> None:
    """Lead one partition until its lease is lost, the worker stops or it is handed over."""
    try:
        await router.lead(partition, step_down=down)
    except asyncio.CancelledError:
        raise
    except (RedisError, OSError) as exc:
        log.warning("router lost Redis (%s) partition=%d; retrying", type(exc).__name__, partition.index)
    except Exception as exc:
        log.error("router error partition=%d; retrying\n%s", partition.index, safe_trace(exc))
