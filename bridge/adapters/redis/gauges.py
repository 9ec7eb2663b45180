"""What the metrics read from Redis at scrape time: the inbound backlog, the delivery lanes, what
was set aside, the open cases and the workers' heartbeats.

Reads only, in two pipelined round trips of bounded cost: no SCAN, only the streams, hashes and
sorted sets keys.py names. The lanes are read from the due set (every lane with deliveries
waiting), at most LANES_READ of them, the soonest due first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.adapters.redis.codec import as_text, decode_item
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.heartbeat import ALIVE_MS
from bridge.adapters.redis.keys import Keys, inbound_streams

# A scrape reads the length and the head of at most this many lanes (a head carries its delivery,
# a few kilobytes at most): a backlog of any size costs a scrape at most a few megabytes.
LANES_READ = 1000


@dataclass(frozen=True)
class LaneReading:
    lane: str  # the lane's name: for grouping by platform, never a label
    deliveries: int
    oldest_ms: int | None  # when its head (its oldest delivery) was enqueued; None if empty or unreadable


@dataclass(frozen=True)
class StateReading:
    """The state in Redis as one scrape read it."""

    at_ms: int  # when it was read (this process's clock, like the times it is compared with)
    inbound: int  # entries in the inbound stream (every partition) not yet routed
    inbound_oldest_ms: int | None  # when the oldest of them was recorded (from its entry id)
    events_set_aside: int
    deliveries_set_aside: int
    open_cases: int
    workers_alive: int
    lanes_queued: int  # every lane with deliveries waiting
    lanes: tuple[LaneReading, ...]  # the first LANES_READ of them, the soonest due first
    # Each partition's (entries not yet routed, when its oldest was recorded), by partition.
    partitions: tuple[tuple[int, int | None], ...] = ()


async def read_state(
    redis: RedisClient, keys: Keys, *, now_ms: int, lanes_read: int = LANES_READ, partitions: int = 1
) -> StateReading:
    """One reading of the state (of each of the inbound stream's partitions). Raises what the
    client raises when Redis does not answer."""
    pipe = redis.pipeline(transaction=False)
    for stream in inbound_streams(keys, partitions):
        pipe.xlen(stream)
        pipe.xrange(stream, count=1)
    pipe.xlen(keys.set_aside)
    pipe.xlen(keys.deliveries_set_aside)
    pipe.hlen(keys.open_by_child)
    pipe.zcount(keys.workers, now_ms - ALIVE_MS, "+inf")
    pipe.zcard(keys.due)
    pipe.zrange(keys.due, 0, lanes_read - 1)
    replies: list[Any] = await pipe.execute()
    streams = [
        (int(replies[2 * p]), int(as_text(replies[2 * p + 1][0][0]).partition("-")[0]) if replies[2 * p + 1] else None)
        for p in range(partitions)
    ]
    replies = replies[2 * partitions :]
    events_aside, deliveries_aside, open_cases, alive, queued, due = replies
    names = [as_text(name) for name in due]
    heads: list[Any] = []
    if names:
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(keys.lane(name))
            pipe.lindex(keys.lane(name), 0)
        heads = await pipe.execute()
    lanes = tuple(
        LaneReading(lane=name, deliveries=int(heads[2 * i]), oldest_ms=_enqueued_ms(heads[2 * i + 1]))
        for i, name in enumerate(names)
    )
    return StateReading(
        at_ms=now_ms,
        inbound=sum(count for count, _ in streams),
        inbound_oldest_ms=min((ms for _, ms in streams if ms is not None), default=None),
        partitions=tuple(streams),
        events_set_aside=int(events_aside),
        deliveries_set_aside=int(deliveries_aside),
        open_cases=int(open_cases),
        workers_alive=int(alive),
        lanes_queued=int(queued),
        lanes=lanes,
    )


def _enqueued_ms(head: bytes | str | None) -> int | None:
    if head is None:
        return None
    try:
        return decode_item(as_text(head))[2]
    except (ValueError, KeyError, TypeError):
        return None  # an item that does not decode is the deliverer's to set aside, not the scrape's
