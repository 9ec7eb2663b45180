"""The README's delivery promises, each tested where it could break: under a real backlog, across
lanes, with a call slower than a lease, and with a worker stopped mid-call.

Every test here fails on a one-line change that breaks its promise (bench/promises.py applies
each such change to a copy of the code and checks that the named test fails). Waits are on what
the fakes received; where time itself is the point, the tests assert lower bounds (nothing
happened before a pause ended), which a slow machine cannot make fail.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.adapters.redis.keys import Keys
from bridge.fakes.server import time_scale
from tests.conftest import ALWAYS_OPEN, Bridge, line_text_event, write_policy
from tests.test_relay_e2e import CHILD, OTHER_CHILD, bot_thread, open_case, roots, wait_thread

pytestmark = pytest.mark.redis

POST = "/api/chat.postMessage"
PUSH = "/v2/bot/message/push"
KEYS = Keys()


def wait_routed(bridge: Bridge, timeout: float = 20) -> None:
    """Until the router has decided every recorded event (a routed entry leaves the stream)."""
    bridge.fake_slack.wait_for(lambda: bridge.redis.xlen(KEYS.inbound) == 0, timeout=timeout)


def posts_in_thread(bridge: Bridge, root_ts: str, text: str | None = None) -> list[Any]:
    """The chat.postMessage requests the bridge made into one thread (with this text), answered
    or not."""
    return [
        r
        for r in bridge.fake_slack.requests_to(POST)
        if (r.json or {}).get("thread_ts") == root_ts and text in (None, (r.json or {}).get("text"))
    ]


def test_order_within_a_case_holds_under_a_real_backlog(bridge_factory: Any) -> None:
    """Thirty messages wait in the case's lane behind a post Slack has not answered yet."""
    bridge: Bridge = bridge_factory(BRIDGE_HTTP_TIMEOUT_SECONDS="20")  # the stalled post stays one attempt
    root_ts = open_case(bridge)
    bridge.fake_slack.stall(POST)
    texts = [f"順番待ち {i}" for i in range(30)]
    for text in texts:
        assert bridge.line_events(line_text_event(CHILD, text)).status_code == 200
    wait_routed(bridge)
    bridge.fake_slack.wait_for(lambda: len(posts_in_thread(bridge, root_ts)) >= 2)  # the root's first, then one stalled
    bridge.fake_slack.unstall(POST)
    bridge.fake_slack.wait_for(lambda: len(bot_thread(bridge, root_ts)) >= 31, timeout=30)
    assert bot_thread(bridge, root_ts) == ["はじめまして", *texts]


def test_a_backlog_recorded_while_no_worker_runs_is_routed_in_order(bridge_factory: Any) -> None:
    """The events wait in the inbound stream and reach the router as one batch."""
    bridge: Bridge = bridge_factory(worker=0)
    texts = [f"まとめて {i}" for i in range(30)]
    for text in texts:
        assert bridge.line_events(line_text_event(CHILD, text)).status_code == 200
    assert bridge.redis.xlen(KEYS.inbound) == 30
    bridge.start("worker")
    root_ts, _ = wait_thread(bridge, 30, timeout=30)
    assert bot_thread(bridge, root_ts) == texts
    assert len(roots(bridge)) == 1


def test_after_a_flood_cool_down_the_childs_messages_reach_the_thread_again(
    bridge_factory: Any, tmp_path: Path
) -> None:
    floods = {"max_messages": 2, "max_stickers": 0, "window_seconds": 1, "cooldown_seconds": 2}
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, name="floods.toml", settings={"floods": floods})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(*(line_text_event(CHILD, text) for text in ("一通目です", "二通目です", "三通目です")))
    root_ts, _ = wait_thread(bridge, 3)  # two messages, then the note that the rest is deferred
    bridge.fake_slack.wait_for(lambda: any("保留を解除" in t for t in bot_thread(bridge, root_ts)), timeout=15)
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1] == "三通目です")
    # The cool-down (2 s) outlasts the flood window (1 s), so the next message is no flood.
    assert bridge.line_events(line_text_event(CHILD, "落ち着きました")).status_code == 200
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1] == "落ち着きました", timeout=15)
    thread = bot_thread(bridge, root_ts)
    assert sum("保留します" in t for t in thread) == 1  # one cool-down, ended; no second one
    assert thread[:2] == ["一通目です", "二通目です"]


def test_a_429_pauses_every_lane_to_that_platform(bridge: Bridge) -> None:
    """Case A's post is answered 429 with Retry-After; case B's lane waits for it too."""
    root_a = open_case(bridge, CHILD)
    root_b = open_case(bridge, OTHER_CHILD)
    bridge.fake_slack.fail_next(POST, 429, headers={"Retry-After": "2"}, body={"ok": False, "error": "ratelimited"})
    bridge.line_events(line_text_event(CHILD, "Aさんの続き"))
    bridge.fake_slack.wait_for(lambda: any(r.status == 429 for r in bridge.fake_slack.requests_to(POST)))
    throttled_at = next(r.at for r in bridge.fake_slack.requests_to(POST) if r.status == 429)
    bridge.line_events(line_text_event(OTHER_CHILD, "Bさんの続き"))
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_a)[-1:] == ["Aさんの続き"], timeout=20)
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_b)[-1:] == ["Bさんの続き"], timeout=20)
    later = [r for r in bridge.fake_slack.requests_to(POST) if r.at > throttled_at]
    assert later, "nothing was posted after the 429"
    # Nothing towards Slack, in either lane, until Retry-After has passed (0.1 s for clock reads).
    assert min(r.at for r in later) >= throttled_at + 1.9
    assert [r.status for r in later] == [200] * len(later)


def test_a_call_slower_than_the_lease_keeps_its_lane(bridge_factory: Any) -> None:
    """A second worker waits for the lane while the first one's call outlasts the lease twice."""
    lease = 2.0
    bridge: Bridge = bridge_factory(
        worker=2, BRIDGE_LEASE_SECONDS=str(int(lease)), BRIDGE_HTTP_TIMEOUT_SECONDS=str(int(10 * lease))
    )
    root_ts = open_case(bridge)
    bridge.fake_slack.stall(POST)
    bridge.line_events(line_text_event(CHILD, "ゆっくり届く"))
    bridge.fake_slack.wait_for(lambda: len(posts_in_thread(bridge, root_ts, "ゆっくり届く")) == 1)
    time.sleep(2.5 * lease)  # a lease lapses unless it is renewed while the call runs
    replies_looked_up = bridge.fake_slack.requests_to("/api/conversations.replies")
    assert len(posts_in_thread(bridge, root_ts, "ゆっくり届く")) == 1, "another worker took the lane and posted again"
    assert replies_looked_up == [], "another worker took the lane and looked for the post"
    bridge.fake_slack.unstall(POST)
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1:] == ["ゆっくり届く"])
    assert bot_thread(bridge, root_ts) == ["はじめまして", "ゆっくり届く"]
    assert "lane lease lost" not in bridge.logs()


def test_sigterm_lets_a_call_in_flight_finish_and_settle(bridge_factory: Any) -> None:
    """Stopped while LINE has not answered a push yet: the push finishes, is settled, and the
    next worker does not push it again."""
    bridge: Bridge = bridge_factory(BRIDGE_HTTP_TIMEOUT_SECONDS="10")
    root_ts = open_case(bridge)
    bridge.fake_line.stall(PUSH)
    reply_ts = bridge.counsellor_reply(root_ts, "ちゃんと届くよ")
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.requests_to(PUSH)) == 1)
    worker = next(p for p in bridge.processes if p.name == "worker")
    worker.popen.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the worker is now stopping, with the push still unanswered
    bridge.fake_line.unstall(PUSH)
    worker.popen.wait(20 * time_scale())
    assert "worker stopped" in worker.log()
    bridge.start("worker")
    # The reaction follows the push's settlement, so a repeated push would have come first.
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    assert len(bridge.fake_line.requests_to(PUSH)) == 1
    assert bridge.fake_line.texts_to(CHILD) == ["ちゃんと届くよ"]
