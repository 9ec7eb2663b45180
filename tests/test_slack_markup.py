"""Unit tests for bridge.adapters.slack.markup: Slack markup -> plain text for LINE."""

from __future__ import annotations

import random

import pytest

from bridge.adapters.slack.markup import slack_to_plain

NAMES = {"U123": "佐藤", "W456": "suzuki"}


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        # user mentions
        ("<@U123> こんにちは", "@佐藤 こんにちは"),
        ("<@W456>", "@suzuki"),
        ("hi <@U999> there", "hi there"),
        ("<@U999> hi", "hi"),
        ("hi <@U999>", "hi"),
        ("hi <@U999>\nthere", "hi\nthere"),
        ("hi <@U999>there", "hi there"),  # the space before removed markup stays when none follows it
        ("FAX<@U999> 送ってね", "FAX 送ってね"),  # and the space after it, when none precedes it
        ("a <@U999> <@U998> b", "a b"),
        ("<@U999|taro> hi", "@taro hi"),
        ("<@U123|label> hi", "@label hi"),
        # channels
        ("see <#C123|general>", "see #general"),
        ("see <#C123> now", "see now"),
        # special mentions
        ("<!here> みんな", "みんな"),
        ("<!channel> みんな", "みんな"),
        ("<!everyone> みんな", "みんな"),
        ("<!here|@here> みんな", "みんな"),
        ("<!channel|channel> x", "x"),
        ("hi <!subteam^S123|@group> ok", "hi ok"),
        ("<!subteam^S123>", ""),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("会議は <!date^1392734382^{date_short}> です", "会議は です"),  # no fallback text: removed
        (
            "on <!date^1392734382^{date_short} at {time}^https://x.y|Feb 18, 2014 6:39 AM PST>.",
            "on Feb 18, 2014 6:39 AM PST.",
        ),
        # links
        ("<https://x.y|label>", "label (https://x.y)"),
        ("<https://x.y|https://x.y>", "https://x.y"),
        ("<https://x.y|x.y>", "https://x.y"),
        ("<http://example.com/|example.com>", "http://example.com/"),
        ("<http://example.org/|example.org/>", "http://example.org/"),  # Slack's own label for a typed link
        ("<https://x.y>", "https://x.y"),
        ("go <https://x.y/a?b=1&amp;c=2> now", "go https://x.y/a?b=1&c=2 now"),
        ("<https://x.y|A &amp; B>", "A & B (https://x.y)"),
        ("<https://x.y/:smile:/|site>", "site (https://x.y/:smile:/)"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("<mailto:a@b.c>", "a@b.c"),
        ("<mailto:a@b.c|メール>", "メール"),
        ("<tel:0120-000-000|電話する>", "電話する"),
        ("<tel:0120-000-000>", "0120-000-000"),
        # not markup / unmatched: stays literal
        ("a < b > c", "a < b > c"),
        ("<", "<"),
        (">", ">"),
        ("|", "|"),
        ("<<@U123>", "<@佐藤"),
        ("<@U123>>", "@佐藤>"),
        ("<>", "<>"),
        ("<|>", "<|>"),
        ("<@lower>", "<@lower>"),
        ("<#>", "<#>"),
        ("<!>", "<!>"),
        ("<no scheme here|x>", "<no scheme here|x>"),
        ("", ""),
    ],
)
def test_slack_to_plain_markup(slack: str, plain: str) -> None:
    assert slack_to_plain(slack, user_names=NAMES) == plain


def test_slack_to_plain_without_user_names_removes_mentions() -> None:
    assert slack_to_plain("<@U123> こんにちは") == "こんにちは"
    assert slack_to_plain("<@U123|佐藤> こんにちは") == "@佐藤 こんにちは"


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("a &amp; b", "a & b"),
        ("&lt;b&gt;", "<b>"),
        ("&amp;lt;", "&lt;"),  # "&amp;" is unescaped last
        ("&amp;amp;", "&amp;"),
        ("&amp;gt;", "&gt;"),
        # escaped markup typed by a person stays literal, not re-parsed
        ("&lt;@U123&gt;", "<@U123>"),
        ("&lt;!channel&gt;", "<!channel>"),
        ("&lt;https://x.y|z&gt;", "<https://x.y|z>"),
        ("&quot;&#39;", "&quot;&#39;"),  # only Slack's three entities
    ],
)
def test_slack_to_plain_entities(slack: str, plain: str) -> None:
    assert slack_to_plain(slack, user_names=NAMES) == plain


@pytest.mark.parametrize(
    "formatted",
    ["*太字*", "_italic_", "~strike~", "`code`", "```\nblock\n```", "> quote", "• bullet", "1. item"],
)
def test_slack_to_plain_keeps_formatting_marks(formatted: str) -> None:
    assert slack_to_plain(formatted) == formatted


def test_slack_to_plain_mixed_message() -> None:
    slack = "<@U123> さん、<!here> 連絡ありがとう :pray: 詳しくは <https://example.org/faq|FAQ> &amp; 10:30 に。"
    # Only a space between two gaps is collapsed; the one after "、" stays.
    assert slack_to_plain(slack, user_names=NAMES) == (
        "@佐藤 さん、 連絡ありがとう \U0001f64f 詳しくは FAQ (https://example.org/faq) & 10:30 に。"
    )


def test_slack_to_plain_fuzz_never_raises() -> None:
    rng = random.Random(20240601)
    alphabet = [
        *"<>|!@#^:&;-_+/ \nabcUCW123ltgamp",
        "&amp;",
        "&lt;",
        "&gt;",
        "😀",
        "あ",
        "https://",
        "mailto:",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        result = slack_to_plain(text, user_names=NAMES)
        assert isinstance(result, str)
