"""Reading a /metrics answer as Prometheus does (prometheus_client's own parser), and the check
that no label carries anything but a small fixed set of values."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

# Spelled out here, not taken from bridge.metrics.labels: the test states what may be labelled.
ALLOWED_LABELS: dict[str, frozenset[str]] = {
    "source": frozenset({"line", "slack"}),
    "platform": frozenset({"line", "slack"}),
    "partition": frozenset({"0"}),
    "outcome": frozenset(
        {
            # webhooks
            "accepted",
            "duplicate",
            "bad_signature",
            "bad_body",
            "too_large",
            "timed_out",
            "client_gone",
            "other_app",
            "not_ready",
            "unhandled",
            "unavailable",
            # the events of LINE's webhooks
            "recorded",
            # deliveries
            "delivered",
            "failed",
            "set_aside",
        }
    ),
}

Series = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str) -> dict[Series, float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Series, float], name: str, **labels: str) -> float:
    """One sample's value; KeyError if the series is not there."""
    return found[(name, tuple(sorted(labels.items())))]


def scrape(url: str) -> dict[Series, float]:
    """GET url/metrics over HTTP and parse it; the content type must be the text format."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4"), response.headers
    return samples(response.text)


def unsafe_labels(found: dict[Series, float]) -> list[str]:
    """Every label outside the allowed names and values ('le', a histogram's bucket bound, must
    be a number)."""
    problems = []
    for name, labels in found:
        for label, label_value in labels:
            if label == "le":
                try:
                    float(label_value)
                except ValueError:
                    problems.append(f"{name}: le={label_value!r} is no bound")
            elif label not in ALLOWED_LABELS:
                problems.append(f"{name}: label {label!r} is not allowed")
            elif label_value not in ALLOWED_LABELS[label]:
                problems.append(f"{name}: {label}={label_value!r} is not one of the allowed values")
    return problems


def delta(before: dict[Series, float], after: dict[Series, float]) -> dict[Series, float]:
    """What changed between two scrapes (series new in the second count from 0), NaN left out."""
    return {
        series: after_value - before.get(series, 0.0)
        for series, after_value in after.items()
        if not math.isnan(after_value) and after_value != before.get(series, 0.0)
    }
