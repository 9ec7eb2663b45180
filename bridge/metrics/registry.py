"""A registry of one process's (or one app's) metrics, and the text format it is served in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics, generate_latest

# Prometheus's text exposition format, version 0.0.4: what generate_latest writes.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def new_registry() -> CollectorRegistry:
    """A registry of its own (never the library's global one, so that tests which build several
    apps or workers in one process do not clash), with the process's CPU, memory and open files.

    The *_created series the library would add to every counter and histogram are turned off: the
    text format does not need them, and they would double every series."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # (the library leaves it unannotated)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in the text format (TEXT_FORMAT)."""
    return generate_latest(registry)
