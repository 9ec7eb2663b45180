"""End to end against a fake Slack that limits chat.postMessage as Slack documents: a child's
messages waiting in their case's lane go into the thread as one post, in order, each with its
time, never merged with the bridge's notes, and exactly once even when the post is answered after
the bridge stopped waiting for it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import CHANNEL, Bridge, line_text_event
from tests.test_delivery_e2e import pending
from tests.test_pacing_e2e import POST, SLACK_PACE
from tests.test_relay_e2e import CHILD, open_case, roots

pytestmark = pytest.mark.redis

REPLIES = "/api/conversations.replies"


@pytest.fixture
def paced(bridge_factory: Any) -> Bridge:
    bridge: Bridge = bridge_factory(**SLACK_PACE)
    bridge.fake_slack.limit_posts_like_slack()
    return bridge


def shown(message: dict[str, Any], label: str) -> list[tuple[str, ...]]:
    """What a thread message shows, one entry per part: ("child", time or "", words) for each of
    the child's messages under the label, or ("note", text) for the bridge's own."""
    blocks = message.get("blocks") or []
    if not blocks or blocks[0].get("type") != "context" or blocks[0]["elements"][0]["text"] != label:
        return [("note", str(message["text"]))]
    parts: list[tuple[str, ...]] = []
    for block in blocks:
        if block["type"] == "context":
            assert block["elements"][0]["text"] == label
            when = block["elements"][1]["text"] if len(block["elements"]) > 1 else ""
            parts.append(("child", when, ""))
        else:
            assert block["text"]["type"] == "plain_text"  # the child's words are never mrkdwn
            kind, when, words = parts[-1]
            parts[-1] = (kind, when, words + block["text"]["text"])
    return parts


def thread_parts(bridge: Bridge, label: str = "💬 相談者からのメッセージ") -> list[list[tuple[str, ...]]]:
    root_ts = roots(bridge)[0]["ts"]
    return [shown(m, label) for m in bridge.fake_slack.thread(CHANNEL, root_ts) if m.get("bot_id")]


def words(parts: list[list[tuple[str, ...]]]) -> list[str]:
    return [part[-1] for message in parts for part in message if part[0] == "child"]


def test_a_childs_waiting_messages_go_as_one_post_each_with_its_time(paced: Bridge) -> None:
    open_case(paced)
    sent = [f"続き {i}" for i in range(6)]
    for text in sent:  # faster than one post a second: they wait in the case's lane
        paced.line_events(line_text_event(CHILD, text))
    paced.fake_slack.wait_for(lambda: words(thread_parts(paced)) == ["はじめまして", *sent], timeout=30)
    paced.wait_settled()
    parts = thread_parts(paced)
    assert words(parts) == ["はじめまして", *sent]  # in order, none lost or doubled
    together = [message for message in parts if len(message) > 1]
    assert together, "nothing was posted together"
    for message in together:  # each line keeps the time the bridge received it
        assert all(len(when) == 8 and when[2] == when[5] == ":" for _, when, _ in message)
    assert len(parts) < 1 + len(sent)  # fewer posts than messages
    assert paced.fake_slack.rate_limited() <= 1


def test_the_bridges_notes_are_never_merged_with_the_childs_words(paced: Bridge) -> None:
    open_case(paced)
    before, after = ["前 1", "前 2"], ["後 1", "後 2"]
    for text in [*before, "死にたい", *after]:  # risk words: notes for the counsellors follow them
        paced.line_events(line_text_event(CHILD, text))
    paced.fake_slack.wait_for(lambda: words(thread_parts(paced))[-2:] == after, timeout=40)
    paced.wait_settled()
    parts = thread_parts(paced)
    assert words(parts) == ["はじめまして", *before, "死にたい", *after]
    for message in parts:  # a message is the child's words alone or a note alone
        assert len({part[0] for part in message}) == 1
    kinds = [message[0][0] for message in parts]
    notes = [i for i, kind in enumerate(kinds) if kind == "note"]
    risky = next(i for i, message in enumerate(parts) if any(p[-1] == "死にたい" for p in message))
    later = next(i for i, message in enumerate(parts) if any(p[-1] == "後 1" for p in message))
    assert notes and all(risky < i < later for i in notes)  # the notes come right after the risk words


def test_a_post_of_several_answered_too_late_is_found_by_its_metadata_not_posted_again(paced: Bridge) -> None:
    """The post that carries three waiting messages is held unanswered until the bridge gives up
    on it and looks for it; only then does Slack take it; the lookup finds it by the metadata of
    the first, and none of the three is posted again."""
    open_case(paced)
    for text in ("一つ目", "二つ目"):  # these two use the channel's burst
        paced.line_events(line_text_event(CHILD, text))
    paced.fake_slack.wait_for(lambda: len(words(thread_parts(paced))) == 3, timeout=30)
    posted_before = len(paced.fake_slack.requests_to(POST))
    paced.fake_slack.stall(POST)
    paced.fake_slack.stall(REPLIES)
    late = ["遅れる 1", "遅れる 2", "遅れる 3"]
    paced.line_events(*(line_text_event(CHILD, text) for text in late))  # wait for a slot together
    paced.fake_slack.wait_for(lambda: bool(pending(paced.fake_slack.requests_to(REPLIES))), timeout=30)
    (held,) = paced.fake_slack.requests_to(POST)[posted_before:]  # one post, no second try before the lookup
    assert all(text in str(held.json) for text in late)
    paced.fake_slack.unstall(POST)
    paced.fake_slack.wait_for(lambda: held.status == 200)  # Slack took it, answering a caller long gone
    paced.fake_slack.unstall(REPLIES)
    paced.wait_settled()
    time.sleep(1.0)  # a second post would have had its slot by now
    paced.wait_settled()
    assert words(thread_parts(paced)) == ["はじめまして", "一つ目", "二つ目", *late]
    assert len(paced.fake_slack.requests_to(POST)) == posted_before + 1
