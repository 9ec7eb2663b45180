"""The metrics' pure parts (labels, the gauges of a reading), and the read of the state in a
real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from redis.asyncio import Redis

from bridge.adapters.redis.codec import encode_item
from bridge.adapters.redis.gauges import ALIVE_MS, LaneReading, StateReading, read_state
from bridge.adapters.redis.keys import Keys
from bridge.metrics.labels import OUTCOMES_OF, Platform, Source, WebhookOutcome, platform_of
from bridge.metrics.state import state_families
from bridge.metrics.web import WebMetrics
from tests.conftest import RedisServer
from tests.scrape import Series, samples, unsafe_labels, value


@pytest.mark.parametrize(
    ("lane", "platform"),
    [
        ("slack:12", Platform.SLACK),
        ("slack:commands", Platform.SLACK),
        ("slack:supervisors", Platform.SLACK),
        ("line:5f3a9c", Platform.LINE),
        ("mail:1", None),
        ("slack", None),
        ("", None),
    ],
)
def test_a_lanes_platform_is_its_prefix(lane: str, platform: Platform | None) -> None:
    assert platform_of(lane) is platform


def reading(**changes: object) -> StateReading:
    base: dict[str, object] = {
        "at_ms": 100_000,
        "inbound": 0,
        "inbound_oldest_ms": None,
        "events_set_aside": 0,
        "deliveries_set_aside": 0,
        "open_cases": 0,
        "workers_alive": 0,
        "lanes_queued": 0,
        "lanes": (),
    }
    return StateReading(**(base | changes))  # type: ignore[arg-type]


def rendered(families: list[Metric]) -> dict[Series, float]:
    class One:
        def collect(self) -> list[Metric]:
            return families

    return samples(generate_latest(One()).decode())


def test_the_gauges_of_a_reading_group_lanes_by_platform_only() -> None:
    lanes = (
        LaneReading("slack:12", 3, 90_000),
        LaneReading("slack:13", 1, 97_500),
        LaneReading("slack:14", 0, None),  # emptied meanwhile: no lane with deliveries
        LaneReading("line:abc", 2, 99_000),
        LaneReading("line:def", 1, None),  # a head that did not decode: counted, no age
        LaneReading("mail:1", 5, 1_000),  # no known platform: left out
    )
    found = rendered(
        state_families(
            reading(inbound=4, inbound_oldest_ms=95_000, lanes_queued=7, lanes=lanes, open_cases=2, workers_alive=1),
            read_s=0.25,
        )
    )
    assert value(found, "bridge_redis_up") == 1
    assert value(found, "bridge_state_read_seconds") == 0.25
    assert value(found, "bridge_inbound_backlog", partition="0") == 4
    assert value(found, "bridge_inbound_oldest_age_seconds", partition="0") == 5.0
    assert value(found, "bridge_lanes_queued") == 7
    assert value(found, "bridge_lanes", platform="slack") == 2
    assert value(found, "bridge_lane_deliveries", platform="slack") == 4
    assert value(found, "bridge_lane_oldest_age_seconds", platform="slack") == 10.0
    assert value(found, "bridge_lanes", platform="line") == 2
    assert value(found, "bridge_lane_deliveries", platform="line") == 3
    assert value(found, "bridge_lane_oldest_age_seconds", platform="line") == 1.0
    assert value(found, "bridge_open_cases") == 2 and value(found, "bridge_workers_alive") == 1
    assert unsafe_labels(found) == []  # no lane's name, no case number


def test_an_empty_state_reads_as_zeros_and_a_clock_ahead_as_no_age() -> None:
    found = rendered(state_families(reading(inbound=1, inbound_oldest_ms=100_500), read_s=0.0))
    assert value(found, "bridge_inbound_oldest_age_seconds", partition="0") == 0.0  # never negative
    for platform in ("line", "slack"):
        assert value(found, "bridge_lanes", platform=platform) == 0
        assert value(found, "bridge_lane_oldest_age_seconds", platform=platform) == 0.0


def test_without_redis_only_redis_up_0_is_said() -> None:
    found = rendered(state_families(None, read_s=5.0))
    assert {name for name, _ in found} == {"bridge_redis_up", "bridge_state_read_seconds"}
    assert value(found, "bridge_redis_up") == 0


def test_every_series_starts_at_zero_so_a_rate_is_right_from_the_first_scrape() -> None:
    web = samples(generate_latest(WebMetrics().registry).decode())
    for source, outcomes in OUTCOMES_OF.items():
        for outcome in outcomes:
            assert value(web, "bridge_webhook_requests_total", source=source.value, outcome=outcome.value) == 0
    assert value(web, "bridge_webhook_events_total", source="line", outcome="recorded") == 0
    assert value(web, "bridge_redis_up") == 0  # not read yet: no state claimed
    assert not [name for name, _ in web if name.endswith("_created")]  # no doubled series
    assert WebhookOutcome.DUPLICATE not in OUTCOMES_OF[Source.SLACK]  # Bolt drops Slack's duplicates unseen


# --- the read of the state, in a real Redis ---------------------------------------------------


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_the_state_is_read_from_the_keys_the_bridge_keeps(redis: Redis) -> None:
    keys = Keys()
    now = int(time.time() * 1000)
    first: Any = await redis.xadd(keys.inbound, {"source": "line", "body": "{}"})
    await redis.xadd(keys.inbound, {"source": "line", "body": "{}"})
    await redis.xadd(keys.set_aside, {"entry": "1-0", "why": "x"})
    for _ in range(2):
        await redis.xadd(keys.deliveries_set_aside, {"lane": "slack:1", "item": "i", "why": "x"})
    await redis.hset(keys.open_by_child, mapping={"child-a": "1", "child-b": "2", "child-c": "3"})
    await redis.zadd(keys.workers, {"w-fresh": now - 500, "w-stale": now - ALIVE_MS - 500})
    for lane, items, due in (("slack:1", 2, now - 10), ("line:abc", 1, now + 5000), ("slack:2", 0, now)):
        for i in range(items):
            await redis.rpush(keys.lane(lane), encode_item(f"{lane}.{i}", {"kind": "x"}, now - 1000 * (i + 1)))
        await redis.zadd(keys.due, {lane: due})
    read = await read_state(redis, keys, now_ms=now, lanes_read=2)
    assert read.inbound == 2 and read.inbound_oldest_ms == int(first.decode().split("-")[0])
    assert (read.events_set_aside, read.deliveries_set_aside, read.open_cases) == (1, 2, 3)
    assert read.workers_alive == 1
    assert read.lanes_queued == 3
    # The two soonest due, the first's head being its oldest item.
    assert read.lanes == (LaneReading("slack:1", 2, now - 1000), LaneReading("slack:2", 0, None))
    empty = await read_state(redis, Keys(prefix="other"), now_ms=now)
    assert (empty.inbound, empty.inbound_oldest_ms, empty.lanes_queued, empty.lanes) == (0, None, 0, ())
