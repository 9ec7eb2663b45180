"""The web process's metrics: webhooks by source and outcome (counts and the time to answer),
the events of LINE's webhooks, and the state in Redis read at each scrape (state.py)."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from bridge.adapters.redis.codec import now_ms
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.gauges import read_state
from bridge.adapters.redis.keys import Keys
from bridge.metrics.labels import OUTCOMES_OF, EventOutcome, Source, WebhookOutcome
from bridge.metrics.registry import exposition, new_registry
from bridge.metrics.state import StateCollector

log = logging.getLogger("bridge.web")

# From a millisecond (a webhook recorded at once) to the body timeout's seconds (408).
WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebMetrics:
    """One web app's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self._requests = Counter(
            "bridge_webhook_requests",
            "Webhook requests answered, by source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "bridge_webhook_seconds",
            "Time from a webhook request's arrival to its answer, by source and outcome",
            ["source", "outcome"],
            buckets=WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self._events = Counter(
            "bridge_webhook_events",
            "Events in LINE's signed webhook bodies: recorded, or dropped as seen before",
            ["source", "outcome"],
            registry=self.registry,
        )
        # Every series there can be starts at 0, so a rate is right from the first scrape.
        for source, outcomes in OUTCOMES_OF.items():
            for outcome in outcomes:
                self._requests.labels(source.value, outcome.value)
        for event in EventOutcome:
            self._events.labels(Source.LINE.value, event.value)
        self._state = StateCollector()
        self.registry.register(self._state)
        self._redis_up: bool | None = None

    def answered(self, source: Source, outcome: WebhookOutcome, seconds: float) -> None:
        self._requests.labels(source.value, outcome.value).inc()
        self._seconds.labels(source.value, outcome.value).observe(seconds)

    def line_events(self, *, recorded: int, duplicates: int) -> None:
        self._events.labels(Source.LINE.value, EventOutcome.RECORDED.value).inc(recorded)
        self._events.labels(Source.LINE.value, EventOutcome.DUPLICATE.value).inc(duplicates)

    async def scrape(self, redis: RedisClient, keys: Keys, *, partitions: int = 1) -> bytes:
        """Read the state in Redis, then render every metric. A Redis that does not answer gives
        bridge_redis_up 0 (logged when that changes), never an error."""
        started = time.perf_counter()
        try:
            reading = await read_state(redis, keys, now_ms=now_ms(), partitions=partitions)
        except (RedisError, OSError, TimeoutError) as exc:
            reading = None
            if self._redis_up is not False:
                log.warning("metrics: Redis did not answer error=%s; bridge_redis_up 0", type(exc).__name__)
        else:
            if self._redis_up is False:
                log.info("metrics: Redis answers again")
        self._redis_up = reading is not None
        # (No await between the refresh and the rendering: a concurrent scrape cannot interleave.)
        self._state.refresh(reading, read_s=time.perf_counter() - started)
        return exposition(self.registry)
