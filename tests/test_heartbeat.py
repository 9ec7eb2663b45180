"""Worker heartbeats (adapters/redis/heartbeat.py), on fakeredis with Lua: a lease whose holder
stopped beating is taken over at once; a live holder's and an unknown holder's are left alone.

The end-to-end take-over after a SIGKILL is in test_takeover_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakeredis import aioredis

from bridge.adapters.redis.codec import now_ms
from bridge.adapters.redis.heartbeat import ALIVE_MS, BEAT_S
from bridge.adapters.redis.store import Store
from tests.test_store import enqueue

LONG_LEASE_MS = 600_000  # far longer than any test: a take-over here is never a lease running out
DEAD = "host-a:101:aaaa"
ALIVE = "host-b:202:bbbb"


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    redis = aioredis.FakeRedis()
    yield Store(redis, child_key_secret=b"k")
    await redis.aclose()


async def last_beat(store: Store, name: str, ms_ago: int) -> None:
    """As if the worker's last heartbeat was ms_ago."""
    for key in (store.keys.workers, store.keys.router_workers):
        await store.redis.zadd(key, {name: now_ms() - ms_ago})


async def test_a_lane_whose_holder_stopped_beating_is_taken_over_before_its_lease_ends(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {}), ("slack:1", "b", {})])
    await last_beat(store, DEAD, 0)
    (held,) = await store.claim(token=f"{DEAD}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    await last_beat(store, ALIVE, 0)
    assert await store.claim(token=f"{ALIVE}:0", lease_ms=LONG_LEASE_MS, max_lanes=1) == []  # beating: left
    await store.redis.zadd(store.keys.due, {"slack:1": 0})  # due again (its ALIVE_MS look)

    await last_beat(store, DEAD, ALIVE_MS + 500)
    (taken,) = await store.claim(token=f"{ALIVE}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    assert (taken.item_id, taken.attempts) == ("a", 2)  # a second attempt: looked for before re-posting
    assert not await store.renew_lane_lease("slack:1", token=f"{DEAD}:0", lease_ms=LONG_LEASE_MS)
    assert await store.complete(taken, token=f"{ALIVE}:0")
    assert not await store.complete(held, token=f"{DEAD}:0")  # a late completion pops nothing more
    assert await store.redis.lrange(store.keys.lane("slack:1"), 0, -1) != []  # "b" is still there


async def test_a_holder_that_never_beat_keeps_its_lease(store: Store) -> None:
    """An older release (no heartbeats) during a rolling upgrade: its leases run out as before."""
    await enqueue(store, [("slack:1", "a", {})])
    await store.claim(token="old-release:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    await store.redis.zadd(store.keys.due, {"slack:1": 0})
    await last_beat(store, ALIVE, 0)
    assert await store.claim(token=f"{ALIVE}:0", lease_ms=LONG_LEASE_MS, max_lanes=1) == []


async def test_a_claimed_lane_is_looked_at_again_after_alive_ms_not_after_its_lease(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {})])
    await store.claim(token=f"{DEAD}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    due = await store.redis.zscore(store.keys.due, "slack:1")
    assert due is not None and due <= now_ms() + ALIVE_MS
    await store.redis.zadd(store.keys.due, {"slack:1": 0})
    await last_beat(store, ALIVE, 0)
    await last_beat(store, DEAD, 0)
    claims, outlook = await store.claim_with_outlook(token=f"{ALIVE}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    assert claims == []
    assert outlook.next_due_in is not None and outlook.next_due_in <= ALIVE_MS / 1000  # and again after that
    assert await store.renew_lane_lease("slack:1", token=f"{DEAD}:0", lease_ms=LONG_LEASE_MS)
    due = await store.redis.zscore(store.keys.due, "slack:1")
    assert due is not None and due <= now_ms() + ALIVE_MS  # a renewal keeps the look ALIVE_MS away


async def test_the_router_lease_goes_to_a_standby_when_the_leader_stops_beating(store: Store) -> None:
    await last_beat(store, DEAD, 0)
    await last_beat(store, ALIVE, 0)
    assert await store.acquire_router_lease(DEAD, LONG_LEASE_MS)
    assert not await store.acquire_router_lease(ALIVE, LONG_LEASE_MS)  # the leader beats
    await last_beat(store, DEAD, ALIVE_MS + 500)
    assert await store.acquire_router_lease(ALIVE, LONG_LEASE_MS)
    assert not await store.renew_router_lease(DEAD, LONG_LEASE_MS)  # the old leader stops leading


async def test_a_router_lease_whose_holder_never_beat_is_kept(store: Store) -> None:
    assert await store.acquire_router_lease("old-release", LONG_LEASE_MS)
    await last_beat(store, ALIVE, 0)
    assert not await store.acquire_router_lease(ALIVE, LONG_LEASE_MS)


async def test_a_worker_that_stops_cleanly_hands_over_at_once(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {})])
    assert await store.beat(DEAD) == []
    await store.claim(token=f"{DEAD}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    assert await store.acquire_router_lease(DEAD, LONG_LEASE_MS)
    await store.gone(DEAD)
    await store.redis.zadd(store.keys.due, {"slack:1": 0})
    await store.beat(ALIVE)
    assert await store.acquire_router_lease(ALIVE, LONG_LEASE_MS)
    (taken,) = await store.claim(token=f"{ALIVE}:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    assert taken.item_id == "a"


async def test_a_heartbeat_reports_a_worker_that_just_died_and_counts_the_living(store: Store) -> None:
    await store.beat(ALIVE)
    await last_beat(store, DEAD, ALIVE_MS + 200)  # just died
    await last_beat(store, "host-c:303:cccc", ALIVE_MS + int(BEAT_S * 1000) * 5)  # died a while ago
    assert await store.beat(ALIVE) == [DEAD]
    assert await store.workers_alive() == 1
