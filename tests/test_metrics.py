"""The metrics' pure parts (labels, the gauges of a reading, which port, what an attempt counts),
the read of the state in a real Redis, and the worker's metrics server over real HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from redis.asyncio import Redis

from bridge.adapters.redis.codec import encode_item
from bridge.adapters.redis.gauges import LaneReading, StateReading, read_state
from bridge.adapters.redis.heartbeat import ALIVE_MS
from bridge.adapters.redis.keys import Keys
from bridge.config.settings import SettingsError, load_settings
from bridge.core.retry import Action
from bridge.metrics.labels import OUTCOMES_OF, Platform, Source, WebhookOutcome, platform_of
from bridge.metrics.registry import TEXT_FORMAT
from bridge.metrics.server import MetricsPort, MetricsPortRefused, MetricsServer, choose_port
from bridge.metrics.state import state_families
from bridge.metrics.web import WebMetrics
from bridge.metrics.worker import WorkerMetrics
from tests.conftest import CREDENTIALS, RedisServer
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


@pytest.mark.parametrize(
    ("port", "metrics_port", "expected"),
    [
        (5100, None, MetricsPort(5100, "PORT")),
        (5100, 9100, MetricsPort(5100, "PORT")),  # a Procfile runner's port wins
        (None, 9100, MetricsPort(9100, "BRIDGE_METRICS_PORT")),
        (None, None, None),
    ],
)
def test_the_workers_metrics_port(port: int | None, metrics_port: int | None, expected: MetricsPort | None) -> None:
    assert choose_port(port=port, metrics_port=metrics_port) == expected


def test_a_port_setting_that_is_no_port_is_refused_by_name() -> None:
    required = {
        "LINE_CHANNEL_SECRET": CREDENTIALS.line_secret,
        "LINE_CHANNEL_ACCESS_TOKEN": CREDENTIALS.line_token,
        "SLACK_BOT_TOKEN": CREDENTIALS.slack_token,
        "SLACK_SIGNING_SECRET": CREDENTIALS.slack_signing,
        "BRIDGE_PSEUDONYM_KEY": CREDENTIALS.pseudonym_key,
        "SLACK_CHANNEL_ID": "C1",
        "SLACK_SUPERVISOR_CHANNEL_ID": "C2",
    }
    assert load_settings(**required, BRIDGE_METRICS_PORT="9100").BRIDGE_METRICS_PORT == 9100
    with pytest.raises(SettingsError, match="BRIDGE_METRICS_PORT"):
        load_settings(**required, BRIDGE_METRICS_PORT="70000")
    with pytest.raises(SettingsError, match="PORT"):
        load_settings(**required, PORT="web")


def worker_samples(metrics: WorkerMetrics) -> dict[Series, float]:
    return samples(generate_latest(metrics.registry).decode())


def test_each_action_is_counted_once_where_it_belongs() -> None:
    metrics = WorkerMetrics()
    metrics.attempted("line:abc", Action.RETRY, rate_limited=True)
    metrics.attempted("line:abc", Action.PUSH_INSTEAD)
    metrics.attempted("line:abc", Action.COMPLETE)
    metrics.attempted("slack:3", Action.FAIL)
    metrics.attempted("slack:3", Action.SET_ASIDE)
    metrics.attempted("slack:3", Action.COMPLETE)
    metrics.attempted("slack:3", Action.COMPLETE)
    metrics.attempted("mail:1", Action.COMPLETE, rate_limited=True)  # no platform: not counted
    metrics.timers_fired([0.02, 3.0])
    found = worker_samples(metrics)
    counts = {series: v for series, v in found.items() if series[0].startswith("bridge_") and v}
    expected: dict[Series, float] = {
        ("bridge_delivery_retries_total", (("platform", "line"),)): 2,
        ("bridge_rate_limited_total", (("platform", "line"),)): 1,
        ("bridge_deliveries_total", (("outcome", "delivered"), ("platform", "line"))): 1,
        ("bridge_deliveries_total", (("outcome", "failed"), ("platform", "slack"))): 1,
        ("bridge_deliveries_total", (("outcome", "set_aside"), ("platform", "slack"))): 1,
        ("bridge_deliveries_total", (("outcome", "delivered"), ("platform", "slack"))): 2,
        ("bridge_timer_lateness_seconds_count", ()): 2,
        ("bridge_timer_lateness_seconds_sum", ()): 3.02,
        **{
            ("bridge_timer_lateness_seconds_bucket", (("le", le),)): n
            for le, n in [("0.025", 1), ("0.05", 1), ("0.1", 1), ("0.25", 1), ("0.5", 1), ("1.0", 1), ("2.5", 1)]
        },
        **{
            ("bridge_timer_lateness_seconds_bucket", (("le", le),)): 2
            for le in ("5.0", "10.0", "30.0", "60.0", "300.0", "3600.0", "+Inf")
        },
    }
    assert counts == expected
    assert unsafe_labels(found) == []


def test_every_series_starts_at_zero_so_a_rate_is_right_from_the_first_scrape() -> None:
    web = samples(generate_latest(WebMetrics().registry).decode())
    for source, outcomes in OUTCOMES_OF.items():
        for outcome in outcomes:
            assert value(web, "bridge_webhook_requests_total", source=source.value, outcome=outcome.value) == 0
    assert value(web, "bridge_webhook_events_total", source="line", outcome="recorded") == 0
    assert value(web, "bridge_redis_up") == 0  # not read yet: no state claimed
    worker = worker_samples(WorkerMetrics())
    for platform in ("line", "slack"):
        assert value(worker, "bridge_rate_limited_total", platform=platform) == 0
        for settled in ("delivered", "failed", "set_aside"):
            assert value(worker, "bridge_deliveries_total", platform=platform, outcome=settled) == 0
    assert not [name for name, _ in web if name.endswith("_created")]  # no doubled series
    assert WebhookOutcome.DUPLICATE not in OUTCOMES_OF[Source.SLACK]  # Bolt drops Slack's duplicates unseen


# --- the worker's metrics server, over real HTTP ------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[WorkerMetrics, MetricsServer]]:
    metrics = WorkerMetrics()
    server = MetricsServer(metrics.registry, MetricsPort(0, "BRIDGE_METRICS_PORT"))
    await server.start()
    yield metrics, server
    await server.stop()


async def test_the_metrics_server_serves_the_registry_in_the_text_format(
    served: tuple[WorkerMetrics, MetricsServer],
) -> None:
    metrics, server = served
    metrics.attempted("line:abc", Action.COMPLETE)
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == TEXT_FORMAT
        found = samples(await response.text())
    assert value(found, "bridge_deliveries_total", platform="line", outcome="delivered") == 1
    assert value(found, "process_resident_memory_bytes") > 0  # the process's own figures too


async def test_a_port_in_use_is_refused_not_shared(served: tuple[WorkerMetrics, MetricsServer]) -> None:
    _, first = served
    second = MetricsServer(WorkerMetrics().registry, MetricsPort(first.port, "PORT"))
    with pytest.raises(MetricsPortRefused, match=rf"port {first.port} \(PORT\) is already in use"):
        await second.start()
    with socket.socket() as holder:  # a port another program listens on, without SO_REUSEPORT
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(MetricsPortRefused, match=f"port {taken}"):
            await MetricsServer(WorkerMetrics().registry, MetricsPort(taken, "BRIDGE_METRICS_PORT")).start()


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


@pytest.mark.redis
async def test_the_backlog_is_read_and_shown_by_partition(redis: Redis) -> None:
    keys = Keys()
    now = int(time.time() * 1000)
    await redis.xadd(keys.inbound_of(2), {"source": "line", "body": "{}"}, id=f"{now - 4000}-0")
    await redis.xadd(keys.inbound_of(2), {"source": "line", "body": "{}"}, id=f"{now - 1000}-0")
    await redis.xadd(keys.inbound_of(0), {"source": "line", "body": "{}"}, id=f"{now - 2000}-0")
    read = await read_state(redis, keys, now_ms=now, partitions=3)
    assert read.partitions == ((1, now - 2000), (0, None), (2, now - 4000))
    assert read.inbound == 3 and read.inbound_oldest_ms == now - 4000
    found = rendered(state_families(read, read_s=0.1))
    assert [value(found, "bridge_inbound_backlog", partition=str(p)) for p in range(3)] == [1, 0, 2]
    ages = [value(found, "bridge_inbound_oldest_age_seconds", partition=str(p)) for p in range(3)]
    assert ages == [2.0, 0.0, 4.0]
