"""End to end under failure: platform errors, throttling, killed workers, several processes."""

from __future__ import annotations

import itertools
import re
import signal
import time
from collections import Counter
from typing import Any

import pytest

from bridge.fakes.server import RecordedRequest, time_scale
from tests.conftest import Bridge, line_text_event, line_user_id
from tests.test_relay_e2e import CHILD, bot_thread, open_case, roots, wait_thread

pytestmark = pytest.mark.redis

POST = "/api/chat.postMessage"
PUSH = "/v2/bot/message/push"
REPLIES = "/api/conversations.replies"


def pending(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """Requests a fake has received and not answered (stalled, or still being handled)."""
    return [r for r in requests if not r.status]


def test_slack_server_errors_are_retried_without_doubling(bridge: Bridge) -> None:
    """5xx on a new case's root post, then on a child's words in its thread: both retried,
    nothing doubled, order kept."""
    bridge.fake_slack.fail_next(POST, 500, times=3)  # the root post of the new case
    bridge.line_events(line_text_event(CHILD, "届いて 0"))
    wait_thread(bridge, 1, timeout=30)
    bridge.fake_slack.fail_next(POST, 500, times=3)  # the child's words in the thread
    for i in range(1, 3):
        bridge.line_events(line_text_event(CHILD, f"届いて {i}"))
    wait_thread(bridge, 3, timeout=30)
    bridge.wait_settled()
    _, texts = wait_thread(bridge, 3)
    assert texts == ["届いて 0", "届いて 1", "届いて 2"]
    assert len(roots(bridge)) == 1


def test_slack_timeout_after_posting_is_not_posted_twice(bridge: Bridge) -> None:
    """Slack took the message but answered too late: the retry finds it by its metadata.

    Stalled instead of delayed, so the order does not depend on the machine's speed: the post is
    kept unanswered until the worker, having given up on it, looks for it (conversations.replies,
    stalled too); only then does Slack take it, and only then is the lookup answered."""
    root_ts = open_case(bridge)
    bridge.wait_settled()
    posted_before = len(bridge.fake_slack.requests_to(POST))
    bridge.fake_slack.stall(POST)
    bridge.fake_slack.stall(REPLIES)
    bridge.line_events(line_text_event(CHILD, "遅れて届く"))
    bridge.line_events(line_text_event(CHILD, "その次"))
    bridge.fake_slack.wait_for(lambda: bool(pending(bridge.fake_slack.requests_to(REPLIES))), timeout=30)
    (late,) = bridge.fake_slack.requests_to(POST)[posted_before:]  # no second try before the lookup
    bridge.fake_slack.unstall(POST)
    bridge.fake_slack.wait_for(lambda: late.status == 200)  # Slack took it, answering a caller long gone
    bridge.fake_slack.unstall(REPLIES)
    bridge.fake_slack.wait_for(lambda: len(bot_thread(bridge, root_ts)) >= 3, timeout=30)
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして", "遅れて届く", "その次"]
    assert any("conversations.replies" in r.path for r in bridge.fake_slack.requests)


def test_slack_429_with_retry_after_holds_and_keeps_order(bridge: Bridge) -> None:
    bridge.fake_slack.fail_next(POST, 429, headers={"Retry-After": "2"}, body={"ok": False, "error": "ratelimited"})
    started = time.monotonic()
    for i in range(5):
        bridge.line_events(line_text_event(CHILD, f"順番 {i}"))
    _, texts = wait_thread(bridge, 5, timeout=30)
    assert time.monotonic() - started >= 2.0  # Retry-After was honoured
    bridge.wait_settled()
    _, texts = wait_thread(bridge, 5)
    assert texts == [f"順番 {i}" for i in range(5)]
    posts = bridge.fake_slack.requests_to(POST)
    throttled = [r for r in posts if r.status == 429]
    assert len(throttled) == 1
    # Nothing was posted within Retry-After of the 429 (a lower bound: load only makes it later).
    after = posts[posts.index(throttled[0]) + 1 :]
    assert after and all(r.at - throttled[0].at >= 1.99 for r in after)  # 1.99: due times are whole ms


def test_a_failure_after_a_burst_of_429s_backs_off_as_the_first_failure(bridge_factory: Any) -> None:
    """Six 429s (Retry-After 1) then a 500 on a child's post: each 429 waits its Retry-After and
    the 500 is tried again after the first failure's backoff (0.5 s), not as if it were the
    seventh failure in a row (8.4 s), with the bridge's own cap of a minute on the backoff."""
    bridge: Bridge = bridge_factory(BRIDGE_RETRY_MAX_BACKOFF_SECONDS="60")
    root_ts = open_case(bridge)
    bridge.wait_settled()
    before = len(bridge.fake_slack.requests_to(POST))
    limited = {"ok": False, "error": "ratelimited"}
    bridge.fake_slack.fail_next(POST, 429, times=6, headers={"Retry-After": "1"}, body=limited)
    bridge.fake_slack.fail_next(POST, 500)
    assert bridge.line_events(line_text_event(CHILD, "混んでいても")).status_code == 200
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1:] == ["混んでいても"], timeout=60)
    posts = bridge.fake_slack.requests_to(POST)[before:]
    assert [r.status for r in posts] == [429] * 6 + [500, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(posts)]
    assert all(gap >= 0.99 for gap in gaps[:6])  # every Retry-After honoured
    assert gaps[6] < 5 * time_scale(), f"the retry after the 500 waited {gaps[6]:.1f} s: the 429s counted"
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして", "混んでいても"]


def test_throttled_channel_still_gets_everything_in_order(bridge: Bridge) -> None:
    # Roughly Slack's chat.postMessage limit: one per second per channel, short bursts.
    bridge.fake_slack.rate_limit("chat.postMessage", per_second=2, burst=3, retry_after=1)
    second = line_user_id(3)
    for i in range(6):
        bridge.line_events(line_text_event(CHILD, f"A{i}"), line_text_event(second, f"B{i}"))
    bridge.fake_slack.wait_for(
        lambda: len(roots(bridge)) == 2 and all(len(bot_thread(bridge, r["ts"])) == 6 for r in roots(bridge)),
        timeout=40,
    )
    threads = sorted(bot_thread(bridge, r["ts"]) for r in roots(bridge))
    assert threads == [[f"A{i}" for i in range(6)], [f"B{i}" for i in range(6)]]
    assert any(r.status == 429 for r in bridge.fake_slack.requests_to(POST))


def test_line_500_then_success_is_one_push_with_one_retry_key(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.fake_line.fail_next(PUSH, 500)
    reply_ts = bridge.counsellor_reply(root_ts, "大丈夫だよ")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts), timeout=30)
    attempts = bridge.fake_line.requests_to(PUSH)
    assert [r.status for r in attempts] == [500, 200]
    keys = {r.headers["x-line-retry-key"] for r in attempts}
    assert len(keys) == 1
    assert bridge.fake_line.texts_to(CHILD) == ["大丈夫だよ"]


def test_line_timeout_then_409_counts_as_delivered(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.fake_line.delay_next(PUSH, 3.0)  # LINE accepts it, but after the 2 s client timeout
    reply_ts = bridge.counsellor_reply(root_ts, "遅くなってごめんね")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts), timeout=30)
    assert bridge.fake_line.texts_to(CHILD) == ["遅くなってごめんね"]
    statuses = [r.status for r in bridge.fake_line.requests_to(PUSH)]
    assert 409 in statuses and statuses.count(200) == 1
    assert "warning" not in bridge.fake_slack.reactions_on(reply_ts)


def test_line_4xx_is_final_and_reported_in_the_thread(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.fake_line.fail_next(PUSH, 400, body={"message": "The request body has 1 error(s)"})
    reply_ts = bridge.counsellor_reply(root_ts, "これは届かない")
    bridge.fake_slack.wait_for(lambda: "warning" in bridge.fake_slack.reactions_on(reply_ts), timeout=30)
    _, texts = wait_thread(bridge, 2)
    assert "LINEに届いていません" in texts[1] and "400" in texts[1]
    assert len(bridge.fake_line.requests_to(PUSH)) == 1  # not retried
    # The next reply is unaffected.
    next_ts = bridge.counsellor_reply(root_ts, "こちらは届く")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(next_ts))
    assert bridge.fake_line.texts_to(CHILD) == ["こちらは届く"]


def test_worker_killed_mid_stream_loses_and_doubles_nothing(bridge_factory: object) -> None:
    bridge: Bridge = bridge_factory()  # type: ignore[operator]
    bridge.fake_slack.set_delay(POST, 0.15)
    root_ts = open_case(bridge, text="0")
    for i in range(1, 25):
        bridge.line_events(line_text_event(CHILD, str(i)))
    bridge.fake_slack.wait_for(lambda: len(bot_thread(bridge, root_ts)) >= 6, timeout=30)
    # Killed with a post in flight, whatever the machine's speed: the next post is stalled.
    bridge.fake_slack.stall(POST)
    bridge.fake_slack.wait_for(lambda: bool(pending(bridge.fake_slack.requests_to(POST))), timeout=30)
    worker = next(p for p in bridge.processes if p.name == "worker")
    worker.stop(signal.SIGKILL)
    # Slack takes the post the dead worker was making (its answer is lost), before anyone looks.
    bridge.fake_slack.unstall(POST)
    bridge.fake_slack.wait_for(lambda: not pending(bridge.fake_slack.requests_to(POST)))
    bridge.start("worker")
    bridge.fake_slack.wait_for(lambda: len(bot_thread(bridge, root_ts)) >= 25, timeout=40)
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == [str(i) for i in range(25)]


def test_two_webs_and_two_workers_open_each_case_once_and_deliver_once(bridge_factory: object) -> None:
    bridge: Bridge = bridge_factory(web=2, worker=2)  # type: ignore[operator]
    children = [line_user_id(0x100 + i) for i in range(5)]
    for n in range(8):
        for index, child in enumerate(children):
            event = line_text_event(child, f"{index}-{n}")
            # Each event reaches one web process, and a redelivery of it reaches the other.
            first, second = (bridge.web_urls[0], bridge.web_urls[1]) if n % 2 else bridge.web_urls[::-1]
            assert bridge.line_events(event, url=first).status_code == 200
            assert (
                bridge.line_events({**event, "deliveryContext": {"isRedelivery": True}}, url=second).status_code == 200
            )
    bridge.fake_slack.wait_for(
        lambda: len(roots(bridge)) == 5 and all(len(bot_thread(bridge, r["ts"])) == 8 for r in roots(bridge)),
        timeout=40,
    )
    threads = sorted(bot_thread(bridge, r["ts"]) for r in roots(bridge))
    assert threads == [[f"{i}-{n}" for n in range(8)] for i in range(5)]
    numbers = [re.search(r"#(\d+)", r["text"]) for r in roots(bridge)]
    assert sorted(n.group(1) for n in numbers if n) == ["1", "2", "3", "4", "5"]

    replies = []
    for root in roots(bridge):
        for n in range(3):
            replies.append(bridge.counsellor_reply(root["ts"], f"返信 {root['ts']} {n}"))
    bridge.fake_slack.wait_for(
        lambda: all("white_check_mark" in bridge.fake_slack.reactions_on(ts) for ts in replies), timeout=40
    )
    bridge.wait_settled()
    pushed = Counter(m["text"] for p in bridge.fake_line.accepted_pushes() for m in p["messages"])
    assert len(pushed) == 15 and set(pushed.values()) == {1}
    for root in roots(bridge):
        texts = [t for child in children for t in bridge.fake_line.texts_to(child) if root["ts"] in t]
        assert texts == [f"返信 {root['ts']} {n}" for n in range(3)]
