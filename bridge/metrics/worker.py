"""The worker process's metrics: deliveries settled by platform and outcome, retries, 429s, and
how late due timers were moved into the inbound stream. Served by the worker itself (server.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from prometheus_client import Counter, Histogram

from bridge.core.retry import Action
from bridge.metrics.labels import DeliveryOutcome, Platform, platform_of
from bridge.metrics.registry import new_registry

# From the router's usual few milliseconds to a deadline missed while every worker was down.
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class WorkerMetrics:
    """One worker's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self._deliveries = Counter(
            "bridge_deliveries",
            "Deliveries settled, by platform and outcome (a retried delivery is counted once, when settled)",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self._retries = Counter(
            "bridge_delivery_retries",
            "Delivery attempts to be tried again (an error, no answer, a 429, a refused reply token)",
            ["platform"],
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "bridge_rate_limited",
            "429 answers to deliveries (every lane to the platform pauses for Retry-After)",
            ["platform"],
            registry=self.registry,
        )
        self._lateness = Histogram(
            "bridge_timer_lateness_seconds",
            "How long after its due time each due timer was moved into the inbound stream",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        for platform in Platform:  # every series starts at 0
            for outcome in DeliveryOutcome:
                self._deliveries.labels(platform.value, outcome.value)
            self._retries.labels(platform.value)
            self._rate_limited.labels(platform.value)

    def attempted(self, lane: str, action: Action, *, rate_limited: bool = False) -> None:
        """An attempt on a lane's delivery was settled by the retry rules' action."""
        platform = platform_of(lane)
        if platform is None:  # a lane of no known platform: nothing to label it with
            return
        if rate_limited:
            self._rate_limited.labels(platform.value).inc()
        match action:
            case Action.COMPLETE:
                self._deliveries.labels(platform.value, DeliveryOutcome.DELIVERED.value).inc()
            case Action.RETRY | Action.PUSH_INSTEAD:
                self._retries.labels(platform.value).inc()
            case Action.FAIL:
                self._deliveries.labels(platform.value, DeliveryOutcome.FAILED.value).inc()
            case Action.SET_ASIDE:
                self._deliveries.labels(platform.value, DeliveryOutcome.SET_ASIDE.value).inc()
            case _:
                assert_never(action)

    def timers_fired(self, lateness_s: Iterable[float]) -> None:
        for late in lateness_s:
            self._lateness.observe(late)
