"""What is set aside for an operator, end to end: the Procfile's processes against a real Redis,
the fakes and signed HTTP, and `bridge set-aside` run as an operator runs it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bridge.adapters.redis.keys import Keys
from tests.conftest import Bridge

pytestmark = pytest.mark.redis

KEYS = Keys()
DAY_MS = 86400 * 1000


def test_the_worker_drops_what_was_set_aside_longer_than_the_policy_keeps_it(bridge_factory: Any) -> None:
    """Set aside 15 days ago goes (the shipped policy keeps 14); set aside 13 days ago stays."""
    bridge: Bridge = bridge_factory(worker=0)
    now_ms = int(time.time() * 1000)
    for stream in (KEYS.set_aside, KEYS.deliveries_set_aside):
        bridge.redis.xadd(stream, {"entry": "old"}, id=f"{now_ms - 15 * DAY_MS}-0")
        bridge.redis.xadd(stream, {"entry": "recent"}, id=f"{now_ms - 13 * DAY_MS}-0")
    bridge.start("worker")  # its router sweeps as it starts leading, then every minute

    def entries(stream: str) -> list[bytes]:
        found: Any = bridge.redis.xrange(stream)
        return [fields[b"entry"] for _, fields in found]

    bridge.fake_slack.wait_for(
        lambda: len(entries(KEYS.set_aside)) == len(entries(KEYS.deliveries_set_aside)) == 1, timeout=10
    )
    assert entries(KEYS.set_aside) == entries(KEYS.deliveries_set_aside) == [b"recent"]
