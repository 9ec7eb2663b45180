"""The state in Redis as gauges: the inbound backlog and its oldest entry, the lanes by platform,
what was set aside, the open cases and the workers alive.

A StateCollector yields the reading it was last given; the web reads Redis just before each
scrape renders (web.py), so the gauges are as fresh as the scrape. When Redis did not answer,
bridge_redis_up is 0 and the gauges read from Redis are left out (not stale, not zero).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from bridge.adapters.redis.gauges import LANES_READ, StateReading
from bridge.adapters.redis.heartbeat import ALIVE_MS
from bridge.metrics.labels import Platform, platform_of


def state_families(reading: StateReading | None, *, read_s: float) -> list[Metric]:
    """The gauges of one reading (None: Redis did not answer). read_s: how long the read took."""
    up = GaugeMetricFamily(
        "bridge_redis_up",
        "1 if this scrape read the state in Redis, 0 if Redis did not answer",
        value=1 if reading else 0,
    )
    took = GaugeMetricFamily("bridge_state_read_seconds", "How long this scrape's read of Redis took", value=read_s)
    if reading is None:
        return [up, took]
    now = reading.at_ms

    def age(ms: int | None) -> float:
        return max(0.0, (now - ms) / 1000) if ms is not None else 0.0

    backlog = GaugeMetricFamily(
        "bridge_inbound_backlog", "Recorded events not yet decided by the router", labels=["partition"]
    )
    # By partition (a reading that names none: the whole stream is partition 0's).
    per_partition = reading.partitions or ((reading.inbound, reading.inbound_oldest_ms),)
    for index, (count, _) in enumerate(per_partition):
        backlog.add_metric([str(index)], count)
    oldest = GaugeMetricFamily(
        "bridge_inbound_oldest_age_seconds",
        "Age of the oldest event not yet decided (0 when there is none)",
        labels=["partition"],
    )
    for index, (_, oldest_ms) in enumerate(per_partition):
        oldest.add_metric([str(index)], age(oldest_ms))

    lanes = GaugeMetricFamily(
        "bridge_lanes", f"Lanes with deliveries waiting (of the {LANES_READ} soonest due)", labels=["platform"]
    )
    waiting = GaugeMetricFamily(
        "bridge_lane_deliveries", f"Deliveries waiting in lanes (of the {LANES_READ} soonest due)", labels=["platform"]
    )
    lane_oldest = GaugeMetricFamily(
        "bridge_lane_oldest_age_seconds",
        f"Age of the oldest delivery waiting (in the {LANES_READ} lanes soonest due; 0 when none)",
        labels=["platform"],
    )
    for platform in Platform:
        mine = [lane for lane in reading.lanes if platform_of(lane.lane) is platform and lane.deliveries > 0]
        times = [lane.oldest_ms for lane in mine if lane.oldest_ms is not None]
        lanes.add_metric([platform.value], len(mine))
        waiting.add_metric([platform.value], sum(lane.deliveries for lane in mine))
        lane_oldest.add_metric([platform.value], age(min(times)) if times else 0.0)

    def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, value=value)

    return [
        up,
        took,
        backlog,
        oldest,
        gauge(
            "bridge_lanes_queued",
            "Every lane with deliveries waiting (all platforms, none left out)",
            reading.lanes_queued,
        ),
        lanes,
        waiting,
        lane_oldest,
        gauge(
            "bridge_set_aside_events",
            "Events the router could not decide, kept for an operator",
            reading.events_set_aside,
        ),
        gauge(
            "bridge_set_aside_deliveries",
            "Deliveries (a child's words Slack refused) kept for an operator",
            reading.deliveries_set_aside,
        ),
        gauge("bridge_open_cases", "Cases open now", reading.open_cases),
        gauge(
            "bridge_workers_alive",
            f"Workers whose last heartbeat is at most {ALIVE_MS / 1000:g} s old",
            reading.workers_alive,
        ),
    ]


class StateCollector:
    """Yields the gauges of the last reading it was given (see refresh)."""

    def __init__(self) -> None:
        self._families: list[Metric] = state_families(None, read_s=0.0)

    def refresh(self, reading: StateReading | None, *, read_s: float) -> None:
        self._families = state_families(reading, read_s=read_s)

    def collect(self) -> Iterable[Metric]:
        return list(self._families)
