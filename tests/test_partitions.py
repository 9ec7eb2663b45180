"""Partitions of the inbound stream (adapters/redis/partitions.py, engine/partitions.py): where an
event is recorded, the share of partitions a worker leads, one count per deployment.

The end-to-end behaviour (two workers, hand-over, take-over) is in test_partitions_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_async
from fakeredis import aioredis

from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.partitions import PartitionsRefused, check_partition_count, partition_of
from bridge.adapters.redis.store import Store
from bridge.engine.partitions import Partition, order_for, share_of
from tests.conftest import RedisServer, line_user_id

CHILDREN = [line_user_id(n) for n in range(64)]


def test_a_childs_partition_is_fixed_and_the_children_spread_over_all() -> None:
    assert [partition_of(c, 4) for c in CHILDREN] == [partition_of(c, 4) for c in CHILDREN]
    counts = [sum(1 for c in CHILDREN if partition_of(c, 4) == p) for p in range(4)]
    assert min(counts) >= 8, counts  # 64 children: none of 4 partitions is left nearly empty
    assert {partition_of(c, 1) for c in CHILDREN} == {0}
    assert partition_of("", 4) == 0


def test_a_workers_share_and_the_order_it_tries_partitions_in() -> None:
    assert [share_of(4, alive) for alive in (0, 1, 2, 3, 4, 5)] == [4, 4, 2, 2, 1, 1]
    assert share_of(1, 2) == 1
    for name in ("host:1:aa", "host:2:bb", "other:33:cc"):
        assert sorted(order_for(name, 4)) == [0, 1, 2, 3]
    assert len({order_for(f"host:{n}:x", 4)[0] for n in range(20)}) > 1  # not every worker starts at 0


def test_entries_of_different_partitions_get_different_markers() -> None:
    keys = Keys()
    first, third = Partition.of(keys, 0), Partition.of(keys, 3)
    assert first.marker("17-0") == "17-0" and first.stream == keys.inbound and first.fires_timers
    assert third.marker("17-0") != first.marker("17-0") and third.stream == keys.inbound_of(3)
    assert not third.fires_timers


@pytest.fixture
async def fake() -> AsyncIterator[aioredis.FakeRedis]:
    client = aioredis.FakeRedis()
    yield client
    await client.aclose()


async def test_the_first_count_is_recorded_and_another_is_refused(fake: aioredis.FakeRedis) -> None:
    keys = Keys()
    assert not await check_partition_count(fake, keys, 4, record=False)  # the web: none yet, none written
    assert await fake.get(keys.partition_count) is None
    assert await check_partition_count(fake, keys, 4)
    assert await check_partition_count(fake, keys, 4, record=False)
    await check_partition_count(fake, keys, 4)  # the same count again: fine
    with pytest.raises(PartitionsRefused, match="has 4 partitions, but BRIDGE_ROUTER_PARTITIONS is 2"):
        await check_partition_count(fake, keys, 2)
    with pytest.raises(PartitionsRefused, match="from 1 to 64"):
        await check_partition_count(fake, keys, 0)
    assert await fake.get(keys.partition_count) == b"4"


async def test_line_events_are_recorded_in_their_childs_partition(fake: aioredis.FakeRedis) -> None:
    store = Store(fake, partitions=4)
    events = [(f"e{n}", f'{{"n": {n}}}') for n in range(len(CHILDREN))]
    assert await store.record_events("line", events, children=[*CHILDREN[:-1], None]) == len(CHILDREN)
    for p in range(4):
        entries: Any = await fake.xrange(store.keys.inbound_of(p))
        expected = [n for n, c in enumerate(CHILDREN[:-1]) if partition_of(c, 4) == p] + ([63] if p == 0 else [])
        assert [int(fields[b"body"][6:-1]) for _, fields in entries] == expected
    assert await store.record_events("line", events[:3], children=CHILDREN[:3]) == 0  # seen before: skipped


async def test_with_one_partition_everything_goes_to_the_one_stream(fake: aioredis.FakeRedis) -> None:
    store = Store(fake)
    await store.record_events("line", [("a", "{}"), ("b", "{}")], children=CHILDREN[:2])
    assert await fake.xlen(store.keys.inbound) == 2


@pytest.mark.redis
async def test_a_slack_event_goes_to_the_partition_of_its_cases_child(redis_server: RedisServer) -> None:
    """The Lua twin of partition_of agrees with it (on a real Redis: its redis.sha1hex)."""
    client = redis_async.Redis.from_url(redis_server.url)
    await client.flushdb()
    try:
        store = Store(client, partitions=4)
        for number, child in enumerate(CHILDREN, start=1):
            await client.hset(store.keys.case(number), mapping={"number": number, "child": child})
            await client.hset(store.keys.by_thread, f"{number}.000100", number)
        await client.hset(store.keys.case(100), mapping={"number": 100})  # its child's ID is gone
        for number in range(1, len(CHILDREN) + 1):
            by_number = await store.record_for_case("slack", f"n{number}", f"n{number}", case=str(number))
            by_thread = await store.record_for_case(
                "slack", f"t{number}", f"t{number}", thread_fields=(f"{number}.000100",)
            )
            assert by_number == by_thread == 1
        await store.record_for_case("slack", "gone", "gone", case="100")
        await store.record_for_case("slack", "none", "none")
        await store.record_for_case("slack", "bad", "bad", case="1; DROP")  # not a number: partition 0
        # The thread's case wins over a number named beside it.
        await store.record_for_case("slack", "both", "both", thread_fields=("2.000100",), case="1")
        # With a pool, a thread is looked for under each of its names in order: the first found wins.
        # (Chosen so that neither a miss, partition 0, nor the second name would pass for the first.)
        await client.hset(store.keys.by_thread, "C2:6.000100", 6)
        await store.record_for_case("slack", "pooled", "pooled", thread_fields=("C2:6.000100", "2.000100"))
        await store.record_for_case("slack", "fallback", "fallback", thread_fields=("C9:1.000100", "4.000100"))
        assert await store.record_for_case("slack", "none", "none") == 0  # seen before: skipped
        found: dict[int, list[str]] = {}
        for p in range(4):
            entries: Any = await client.xrange(store.keys.inbound_of(p))
            found[p] = [fields[b"body"].decode() for _, fields in entries]
        for number, child in enumerate(CHILDREN, start=1):
            expected = partition_of(child, 4)
            assert f"n{number}" in found[expected] and f"t{number}" in found[expected], (number, expected)
        assert {"gone", "none", "bad"} <= set(found[0])
        assert "both" in found[partition_of(CHILDREN[1], 4)]
        assert len({0, partition_of(CHILDREN[5], 4), partition_of(CHILDREN[1], 4)}) == 3
        assert "pooled" in found[partition_of(CHILDREN[5], 4)]
        assert partition_of(CHILDREN[3], 4) != 0
        assert "fallback" in found[partition_of(CHILDREN[3], 4)]
    finally:
        await client.flushdb()
        await client.aclose()
