"""Events API deliveries the bridge has no use for still get 200 at once, and nothing is kept."""

from __future__ import annotations

import pytest

from bridge.adapters.redis.keys import Keys
from bridge.fakes.server import time_scale
from tests.conftest import Bridge

pytestmark = pytest.mark.redis


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_mention", "user": "UCOUNSEL1", "text": "<@UBOT> こんにちは", "ts": "1.2", "channel": "C1"},
        {"type": "reaction_added", "user": "UCOUNSEL1", "reaction": "eyes", "item": {"type": "message"}},
        {"type": "a_type_slack_adds_next_year", "payload": {"deep": [1, 2, 3]}},
        {"type": "<script>" * 20},
        {"no_type": True},
    ],
    ids=["app_mention", "reaction_added", "future_type", "hostile_type", "no_type"],
)
def test_events_the_bridge_does_not_handle_are_answered_200_and_not_recorded(
    bridge: Bridge, event: dict[str, object]
) -> None:
    response = bridge.slack_event(event)
    assert response.status_code == 200, response.text
    assert response.elapsed.total_seconds() < 3 * time_scale()  # Slack waits 3 s, then retries
    bridge.wait_settled()
    assert bridge.redis.xlen(Keys().inbound) == 0
    assert not bridge.redis.keys(b"br:{in}:seen:*")
    assert "Traceback" not in bridge.logs()
    assert "<script>" not in bridge.logs()
