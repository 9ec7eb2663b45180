"""Worker heartbeats: who is alive, so that what a dead worker held is taken over in seconds.

Each worker process writes the time of its heartbeat (every BEAT_S) into a sorted set of worker
names, once under each hash tag whose scripts look at it: the lanes' (a lane lease whose holder
stopped beating is taken over by the next deliverer that looks at the lane, lanes.py) and the
inbound stream's (the router lease, inbound.py). A worker is dead when its heartbeat is older
than ALIVE_MS; one that stops cleanly says so at once. Names are worker names
("host:pid:random"): nothing about a child. Entries older than an hour are dropped.

The times are the workers' own clocks, as every due time in Redis is: the workers' clocks
must agree to well within a second (NTP).
"""

from __future__ import annotations

from typing import Any

from bridge.adapters.redis.codec import as_text, now_ms
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys

BEAT_S = 1.0  # how often a worker beats
ALIVE_MS = 3_000  # a worker whose last heartbeat is older than this is dead
FORGET_MS = 3_600_000  # heartbeats older than this are dropped (every lease has long run out)

__all__ = ["ALIVE_MS", "BEAT_S", "HeartbeatStore"]


class HeartbeatStore:
    """The heartbeats' reads and writes (a part of Store)."""

    redis: RedisClient
    keys: Keys

    async def beat(self, name: str) -> list[str]:
        """Record a heartbeat of this worker now; returns the workers that died since the last
        look (their heartbeat passed ALIVE_MS within the last beat and a half), so the caller
        can look for their work at once. One round trip."""
        now = now_ms()
        pipe = self.redis.pipeline(transaction=False)
        for key in (self.keys.workers, self.keys.router_workers):
            pipe.zadd(key, {name: now})
            pipe.zremrangebyscore(key, "-inf", now - FORGET_MS)
        lately = f"({now - ALIVE_MS - int(BEAT_S * 1500)}"
        pipe.zrangebyscore(self.keys.workers, lately, f"({now - ALIVE_MS}")
        replies: Any = await pipe.execute()
        return [as_text(member) for member in replies[-1]]

    async def gone(self, name: str) -> None:
        """Say this worker stopped: whatever it still holds is taken over at once."""
        stopped = now_ms() - ALIVE_MS - 1  # dead from now on, and forgotten an hour later like any other
        pipe = self.redis.pipeline(transaction=False)
        for key in (self.keys.workers, self.keys.router_workers):
            pipe.zadd(key, {name: stopped}, xx=True)
        await pipe.execute()

    async def workers_alive(self) -> int:
        return int(await self.redis.zcount(self.keys.workers, now_ms() - ALIVE_MS, "+inf"))
