"""The review of an old block end to end: a supervisor blocks through Slack, the block grows old
(its time moved back in Redis), and the worker's minute pass points it out in the supervisors'
channel once, even across a restart; the block stays."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Bridge, line_user_id, slash_command
from tests.test_controls_e2e import SUPERVISOR, SUPERVISORS
from tests.test_controls_e2e import controlled as controlled  # the fixture
from tests.test_relay_e2e import bot_thread, open_case

pytestmark = pytest.mark.redis

A = line_user_id(0xB1)


def restart_worker(bridge: Bridge) -> None:
    """A new worker: its router's first pass (at once, then every minute) is the standing pass."""
    for process in bridge.processes:
        if process.name == "worker":
            process.stop()
    bridge.start("worker")


def test_an_old_block_is_pointed_out_to_the_supervisors_once(controlled: Bridge) -> None:
    bridge = controlled
    root = open_case(bridge, A, "ないしょのことばです")
    slash_command(bridge, "/block", "1 無関係な投稿の連続", user=SUPERVISOR)
    bridge.fake_slack.wait_for(lambda: any("ブロックしました" in t for t in bot_thread(bridge, root)))
    bridge.wait_settled()
    ((child, raw),) = bridge.redis.hgetall("br:{cases}:blocked").items()
    block = json.loads(raw)
    block["at"] = time.time() - 100 * 86400  # blocked a hundred days ago
    bridge.redis.hset("br:{cases}:blocked", child, json.dumps(block))
    assert bridge.fake_slack.roots(SUPERVISORS) == []

    restart_worker(bridge)
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(SUPERVISORS)) == 1, message="the reminder")
    # Again after a restart: this pass also erases the LINE user ID of the closed case (moved back
    # too), which shows when it has committed, and with it any reminder.
    bridge.redis.zadd("br:{cases}:closed-with-id", {"1": time.time() - 40 * 86400})
    restart_worker(bridge)
    bridge.fake_slack.wait_for(lambda: not bridge.redis.hexists("br:{cases}:case:1", "child"), message="a pass")
    bridge.wait_settled()

    (reminder,) = bridge.fake_slack.roots(SUPERVISORS)
    text = reminder["text"]
    assert "ブロックの見直し" in text and "#1" in text and "100 日間" in text and "無関係な投稿の連続" in text
    assert "ないしょのことば" not in text
    assert bridge.redis.hexists("br:{cases}:blocked", child)  # it stays until a supervisor lifts it
