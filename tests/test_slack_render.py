"""The Slack adapter's rendering of the core's texts: mentions, links, and the child's words
escaped so they notify nobody. Pure functions."""

from __future__ import annotations

import random

import pytest

from bridge.adapters.slack.markup import slack_to_plain
from bridge.adapters.slack.render import escape, render
from bridge.core.ids import CaseNumber, SlackUserId, ThreadTs
from bridge.core.parts import ChildWords, GroupMention, OnDuty, Text, ThreadLink, UserMention
from bridge.core.text import describe_line_message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (("相談 #12 ", UserMention(SlackUserId("U1")), " が担当"), "相談 #12 <@U1> が担当"),
        ((GroupMention("S1"), " 緊急"), "<!subteam^S1> 緊急"),
        ((OnDuty(), " 未返信"), "<!here> 未返信"),
        (
            ("見る: ", ThreadLink(CaseNumber(12), ThreadTs("1800000000.000100"))),
            "見る: https://slack.com/archives/CCASES/p1800000000000100",
        ),
        (("見る: ", ThreadLink(CaseNumber(12), None)), "見る: "),  # no thread yet: no link
        ((ChildWords("<!channel> & <@U1>"),), "&lt;!channel&gt; &amp; &lt;@U1&gt;"),
        ((":rotating_light: *緊急* <!here>",), ":rotating_light: *緊急* <!here>"),  # the policy's own mrkdwn
        ((), ""),
    ],
)
def test_each_part_as_slack_shows_it(text: Text, shown: str) -> None:
    assert render(text, channel="CCASES") == shown


def test_only_the_bridges_mentions_notify_never_the_childs_words() -> None:
    text = (GroupMention("S1"), " ", ChildWords("<!channel> <!subteam^S1> <@U1> <https://evil.example|ok>"))
    shown = render(text, channel="CCASES")
    assert shown.count("<") == 1 and shown.startswith("<!subteam^S1> ")


# ---------------------------------------------------------------------------
# escape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<!here|here>", "&lt;!here|here&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
        ("&amp;", "&amp;amp;"),
        ("*bold* _it_ ~s~ `c` :smile: | #general @here", "*bold* _it_ ~s~ `c` :smile: | #general @here"),
        ("こんにちは😀", "こんにちは😀"),
        ("", ""),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert render((ChildWords(raw),), channel="CCASES") == escaped


@pytest.mark.parametrize(
    "raw",
    ["<!channel>", "<@U123>", "<!everyone> please", "<https://evil.example|click>", "&amp;lt;", "a<b>c&d"],
)
def test_escape_round_trip_through_slack_to_plain(raw: str) -> None:
    escaped = escape(raw)
    assert "<" not in escaped and ">" not in escaped
    assert slack_to_plain(escaped) == raw


def test_escape_round_trip_random() -> None:
    rng = random.Random(1234)
    alphabet = "<>&|!@#;ltgamp a\nあ😀"
    for _ in range(500):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert slack_to_plain(escape(raw)) == raw


# ---------------------------------------------------------------------------
# what a child sent, described, as the thread shows it
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"message_type": "sticker", "sticker_keywords": ["<!here>"]}, "[スタンプ: &lt;!here&gt;]"),
        ({"message_type": "file", "file_name": "<@U1>&.pdf"}, "[ファイル: &lt;@U1&gt;&amp;.pdf]"),
        ({"message_type": "location", "title": "<!channel>"}, "[位置情報: &lt;!channel&gt;]"),
        ({"message_type": "<!everyone>"}, "[未対応のメッセージ: &lt;!everyone&gt;]"),
    ],
)
def test_a_description_is_shown_as_the_childs_words(kwargs: dict[str, object], shown: str) -> None:
    described = describe_line_message(**kwargs)  # type: ignore[arg-type]
    assert render((ChildWords(described),), channel="CCASES") == shown


def test_a_description_is_slack_safe() -> None:
    for message_type in ("sticker", "file", "location", "<x>"):
        out = describe_line_message(message_type, sticker_keywords=["<!here>"], file_name="<!here>", title="<!here>")
        shown = render((ChildWords(out),), channel="CCASES")
        assert "<" not in shown and ">" not in shown
