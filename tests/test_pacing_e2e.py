"""End to end against a fake Slack that limits chat.postMessage as Slack documents (one a second
per channel, bursts of three, then 429 with Retry-After): the bridge paces its posts per channel
itself, serves the waiting cases in turn, and still honours a Retry-After."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Bridge, line_text_event, line_user_id
from tests.test_relay_e2e import bot_thread, roots

pytestmark = pytest.mark.redis

POST = "/api/chat.postMessage"
# Slack's own limit, as the bridge's defaults pace it (the harness turns pacing off).
SLACK_PACE = {"BRIDGE_SLACK_CHANNEL_POSTS_PER_SECOND": "1", "BRIDGE_SLACK_CHANNEL_BURST": "2"}


@pytest.fixture
def paced(bridge_factory: Any) -> Bridge:
    bridge: Bridge = bridge_factory(**SLACK_PACE)
    bridge.fake_slack.limit_posts_like_slack()
    return bridge


def threads(bridge: Bridge) -> list[list[str]]:
    """Each thread's messages from the bridge, line by line (messages posted together are one
    line each)."""
    return sorted([line for text in bot_thread(bridge, r["ts"]) for line in text.split("\n")] for r in roots(bridge))


def posted_words(bridge: Bridge) -> list[tuple[float, str]]:
    """(when, text) of every thread post Slack took, in the order it took them."""
    return [
        (r.at, str(r.json.get("text")))
        for r in bridge.fake_slack.requests_to(POST)
        if r.status == 200 and isinstance(r.json, dict) and r.json.get("thread_ts")
    ]


def test_posts_keep_under_slacks_limit_without_learning_it_from_429s(paced: Bridge) -> None:
    children = [line_user_id(n) for n in range(1, 4)]
    for i in range(2):
        paced.line_events(*(line_text_event(child, f"{n}:{i}") for n, child in enumerate(children)))
    paced.fake_slack.wait_for(lambda: sum(len(t) for t in threads(paced)) == 6 and len(roots(paced)) == 3, timeout=40)
    paced.wait_settled()
    assert threads(paced) == [[f"{n}:0", f"{n}:1"] for n in range(3)]
    # Nine posts (or fewer, some posted together) into one channel at once: a bridge that learnt
    # the limit from 429s was refused several times (each 429 also pausing every lane for its
    # Retry-After); a paced one is not (one is allowed for a machine so busy that a post was held
    # up for more than a second).
    assert paced.fake_slack.rate_limited() <= 1
    assert len([r for r in paced.fake_slack.requests_to(POST) if r.status == 200]) <= 9


def test_waiting_cases_are_served_in_turn(paced: Bridge) -> None:
    """A child who writes faster than the channel takes does not hold up another: no case waits
    while another posts five times."""
    talker, quiet = line_user_id(1), line_user_id(2)
    paced.line_events(line_text_event(talker, "A:start"))
    paced.fake_slack.wait_for(lambda: any(text == "A:start" for _, text in posted_words(paced)), timeout=20)
    sent = 0.0
    for i in range(14):  # one every 0.6 s: the talker's case always has a message waiting
        paced.line_events(line_text_event(talker, f"A:{i}"))
        if i == 3:
            sent = time.time()
            paced.line_events(line_text_event(quiet, "B:0"))  # a new case: its root, then this
        time.sleep(0.6)
    paced.fake_slack.wait_for(lambda: any(text == "B:0" for _, text in posted_words(paced)), timeout=40)
    posted = posted_words(paced)
    at_b = next(at for at, text in posted if text == "B:0")
    meanwhile = [text for at, text in posted if sent < at < at_b and text.startswith("A:")]
    assert len(meanwhile) < 5, meanwhile
    paced.fake_slack.wait_for(lambda: any("A:13" in text for _, text in posted_words(paced)), timeout=40)
    paced.wait_settled()
    assert threads(paced) == sorted([["A:start", *(f"A:{i}" for i in range(14))], ["B:0"]])


def test_a_retry_after_is_still_honoured(paced: Bridge) -> None:
    first = line_user_id(1)
    paced.line_events(line_text_event(first, "はじめまして"))
    paced.fake_slack.wait_for(lambda: len(posted_words(paced)) == 1, timeout=20)
    paced.wait_settled()
    paced.fake_slack.fail_next(POST, 429, headers={"Retry-After": "2"}, body={"ok": False, "error": "ratelimited"})
    paced.line_events(line_text_event(first, "待ってね"))
    paced.fake_slack.wait_for(lambda: len(posted_words(paced)) == 2, timeout=20)
    posts = paced.fake_slack.requests_to(POST)
    throttled = next(r for r in posts if r.status == 429)
    after = [r for r in posts if r.at > throttled.at]
    assert after and all(r.at - throttled.at >= 1.99 for r in after)
    assert threads(paced) == [["はじめまして", "待ってね"]]
