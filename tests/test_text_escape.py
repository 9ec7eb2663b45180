"""Unit tests for bridge.core.text.escape: a child's text escaped for Slack, and back."""

from __future__ import annotations

import random

import pytest

from bridge.core.text.escape import escape_for_slack
from bridge.core.text.slack_markup import slack_to_plain


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
def test_escape_for_slack(raw: str, escaped: str) -> None:
    assert escape_for_slack(raw) == escaped


@pytest.mark.parametrize(
    "raw",
    ["<!channel>", "<@U123>", "<!everyone> please", "<https://evil.example|click>", "&amp;lt;", "a<b>c&d"],
)
def test_escape_round_trip_through_slack_to_plain(raw: str) -> None:
    escaped = escape_for_slack(raw)
    assert "<" not in escaped and ">" not in escaped
    assert slack_to_plain(escaped) == raw


def test_escape_round_trip_random() -> None:
    rng = random.Random(1234)
    alphabet = "<>&|!@#;ltgamp a\nあ😀"
    for _ in range(500):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert slack_to_plain(escape_for_slack(raw)) == raw
