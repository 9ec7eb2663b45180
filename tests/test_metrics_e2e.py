"""GET /metrics end to end: the Procfile's processes, real HTTP, real signatures, a real Redis.

The web's webhook counters move by exactly what was sent; the backlog, the lanes and the open
cases are read from Redis at the scrape; no label carries anything but a small fixed set of
values."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bridge.adapters.redis.keys import Keys
from bridge.fakes.harness import free_port
from tests.conftest import CHANNEL, Bridge, line_text_event, line_user_id
from tests.scrape import delta, scrape, unsafe_labels, value
from tests.test_relay_e2e import CHILD, open_case

pytestmark = pytest.mark.redis

PUSH = "/v2/bot/message/push"


def requests_counted(found: dict[Any, float]) -> dict[tuple[str, str], float]:
    """bridge_webhook_requests_total by (source, outcome), as changed."""
    return {
        (dict(labels)["source"], dict(labels)["outcome"]): count
        for (name, labels), count in found.items()
        if name == "bridge_webhook_requests_total"
    }


def test_webhooks_are_counted_by_outcome_and_the_backlog_read_from_redis(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0)  # nothing routes: what is recorded stays in the stream
    before = scrape(bridge.url)
    assert value(before, "bridge_redis_up") == 1
    assert value(before, "bridge_inbound_backlog", partition="0") == 0
    sent_first = time.time()
    two = json.dumps({"events": [line_text_event(CHILD, "ひとつめ"), line_text_event(CHILD, "ふたつめ")]}).encode()
    assert bridge.line_post(two).status_code == 200
    assert bridge.line_events(line_text_event(line_user_id(2), "みっつめ")).status_code == 200
    assert bridge.line_post(two).status_code == 200  # LINE redelivers: both events seen before
    assert bridge.line_post(two, signature="bad").status_code == 401
    assert bridge.line_post(b"{not json").status_code == 400
    assert bridge.line_post(b'{"events": [' + b" " * (1024 * 1024) + b"]}").status_code == 413
    thread_reply = {"type": "message", "channel": CHANNEL, "user": "U1", "text": "x", "ts": "2.1", "thread_ts": "1.1"}
    assert bridge.slack_event(thread_reply).status_code == 200
    assert bridge.slack_event(thread_reply, app="AOTHERAPP").status_code == 200  # ignored, not recorded
    assert bridge.slack_post(b"{}", headers={"X-Slack-Signature": "v0=bad"}).status_code == 401
    time.sleep(1.0)  # the oldest entry is at least this old at the scrape
    after = scrape(bridge.url)
    scraped = time.time()
    changed = delta(before, after)
    assert requests_counted(changed) == {
        ("line", "accepted"): 2,
        ("line", "duplicate"): 1,
        ("line", "bad_signature"): 1,
        ("line", "bad_body"): 1,
        ("line", "too_large"): 1,
        ("slack", "accepted"): 1,
        ("slack", "other_app"): 1,
        ("slack", "bad_signature"): 1,
    }
    for (source, outcome), count in requests_counted(changed).items():  # each answer timed once
        assert value(changed, "bridge_webhook_seconds_count", source=source, outcome=outcome) == count
    assert value(changed, "bridge_webhook_events_total", source="line", outcome="recorded") == 3
    assert value(changed, "bridge_webhook_events_total", source="line", outcome="duplicate") == 2
    # Three LINE events and the counsellor's reply wait in the stream, the oldest since the first post.
    assert value(after, "bridge_inbound_backlog", partition="0") == 4
    assert 1.0 <= value(after, "bridge_inbound_oldest_age_seconds", partition="0") <= scraped - sent_first + 0.1
    assert value(after, "bridge_lanes_queued") == 0 and value(after, "bridge_open_cases") == 0
    assert unsafe_labels(after) == []


def test_deliveries_waiting_in_a_lane_are_counted_by_platform(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.wait_settled()
    bridge.fake_line.stall(PUSH)  # the first reply is in flight, the second waits behind it
    started = time.time()
    bridge.counsellor_reply(root_ts, "ひとつめ")
    bridge.counsellor_reply(root_ts, "ふたつめ")

    def both_waiting() -> bool:  # (a SCAN is fine in a test; the scrape itself makes none)
        return sum(bridge.redis.llen(key) for key in bridge.redis.scan_iter(Keys().lane("line:*"))) == 2

    bridge.fake_line.wait_for(both_waiting)
    time.sleep(0.5)
    found = scrape(bridge.url)
    assert value(found, "bridge_lanes", platform="line") == 1
    assert value(found, "bridge_lane_deliveries", platform="line") == 2
    assert 0.5 <= value(found, "bridge_lane_oldest_age_seconds", platform="line") <= time.time() - started + 0.1
    assert value(found, "bridge_lane_deliveries", platform="slack") == 0
    assert value(found, "bridge_lanes_queued") >= 1
    bridge.fake_line.unstall(PUSH)
    bridge.wait_settled(timeout=30)
    found = scrape(bridge.url)
    assert value(found, "bridge_lane_deliveries", platform="line") == 0
    assert value(found, "bridge_lane_oldest_age_seconds", platform="line") == 0


def test_a_scrape_without_redis_says_redis_is_down_instead_of_failing(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    found = scrape(bridge.url)  # 200, not 500
    assert value(found, "bridge_redis_up") == 0
    assert not [name for name, _ in found if name.startswith(("bridge_inbound", "bridge_lane", "bridge_open"))]
    assert bridge.line_events(line_text_event(CHILD, "x")).status_code == 503
    assert value(scrape(bridge.url), "bridge_webhook_requests_total", source="line", outcome="unavailable") == 1
    assert "Traceback" not in bridge.logs()
    assert bridge.logs().count("metrics: Redis did not answer") == 1  # said when it changed, not each scrape
