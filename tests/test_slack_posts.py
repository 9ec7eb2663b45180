"""Which of a child's waiting messages one post carries, and how it shows them (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.adapters.redis.codec import encode_item
from bridge.adapters.slack.views import children_blocks
from bridge.config.policy_file import load_policy
from bridge.core.deliveries import PostRole, RootUpdate, ThreadPost, to_payload
from bridge.core.ids import CaseNumber, ThreadTs
from bridge.core.parts import ChildWords
from bridge.core.policy import Policy
from bridge.engine.slack_posts import MAX_MESSAGES, MAX_WORDS, Waiting, group_behind, joins

CASE = CaseNumber(4)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")


def child(words: str) -> ThreadPost:
    return ThreadPost(case=CASE, text=(ChildWords(words),), role=PostRole.CHILD)


def item(n: int, delivery: ThreadPost | RootUpdate) -> str:
    return encode_item(f"1-0.{n}", to_payload(delivery), 1_000 + n, "1000:1000:C1")


HEAD = Waiting("1-0.0", "はじめ", 1_000)


def test_the_childs_messages_right_behind_the_head_go_with_it_up_to_anything_else() -> None:
    behind = [
        item(1, child("つぎ")),
        item(2, child("そのつぎ")),
        item(3, ThreadPost(case=CASE, text=("note",), role=PostRole.NOTE)),  # a bridge note: never joined
        item(4, child("あと")),
    ]
    assert group_behind(HEAD, behind) == [
        HEAD,
        Waiting("1-0.1", "つぎ", 1_001),
        Waiting("1-0.2", "そのつぎ", 1_002),
    ]
    assert group_behind(HEAD, [item(1, RootUpdate(case=CASE, text=("x",))), item(2, child("x"))]) == [HEAD]
    assert group_behind(HEAD, ["garbage|{"]) == [HEAD]


def test_a_post_carries_at_most_so_many_messages_and_words() -> None:
    many = [item(n, child(f"m{n}")) for n in range(1, 30)]
    assert len(group_behind(HEAD, many)) == MAX_MESSAGES
    long = [item(n, child("あ" * 5000)) for n in range(1, 5)]
    grouped = group_behind(HEAD, long)
    assert sum(len(w.words) for w in grouped) <= MAX_WORDS
    assert len(grouped) == 3  # the head and two of 5,000 characters


def test_only_the_childs_words_into_their_own_thread_join() -> None:
    assert joins(child("x"))
    assert not joins(ThreadPost(case=CASE, text=("x",), role=PostRole.NOTE))
    assert not joins(ThreadPost(case=CASE, text=(ChildWords("x"),), role=PostRole.CHILD, thread_ts=ThreadTs("1.2")))


def test_each_message_keeps_its_label_and_time_and_its_words_stay_plain_text(policy: Policy) -> None:
    blocks = children_blocks(policy, [("<!channel> *やあ*", "13:04:05"), ("つぎ", "13:04:09")])
    label = {"type": "plain_text", "text": policy.render("child_label")}
    assert blocks == [
        {"type": "context", "elements": [label, {"type": "plain_text", "text": "13:04:05"}]},
        {"type": "section", "text": {"type": "plain_text", "text": "<!channel> *やあ*", "emoji": False}},
        {"type": "context", "elements": [label, {"type": "plain_text", "text": "13:04:09"}]},
        {"type": "section", "text": {"type": "plain_text", "text": "つぎ", "emoji": False}},
    ]
