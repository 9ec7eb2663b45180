"""Unit tests for bridge.adapters.slack.shortcodes, through slack_to_plain: :emoji: codes -> Unicode."""

from __future__ import annotations

import pytest

from bridge.adapters.slack.markup import slack_to_plain

THUMBS_MEDIUM_LIGHT = "\U0001f44d\U0001f3fc"  # 👍🏼
FLAG_JP = "\U0001f1ef\U0001f1f5"  # 🇯🇵


@pytest.mark.parametrize(
    ("code", "char"),
    [
        (":thumbsup:", "\U0001f44d"),
        (":+1:", "\U0001f44d"),
        (":-1:", "\U0001f44e"),
        (":smile:", "\U0001f604"),
        (":slightly_smiling_face:", "\U0001f642"),
        (":simple_smile:", "\U0001f642"),
        (":white_check_mark:", "\u2705"),
        (":heart:", "\u2764\ufe0f"),
        (":pray:", "\U0001f64f"),
        (":bow:", "\U0001f647"),
        (":sweat_smile:", "\U0001f605"),
        (":cry:", "\U0001f622"),
        (":sob:", "\U0001f62d"),
        (":ok_hand:", "\U0001f44c"),
        (":tada:", "\U0001f389"),
        (":sunny:", "\u2600\ufe0f"),
        (":star:", "\u2b50"),
        (":relieved:", "\U0001f60c"),
        (":blush:", "\U0001f60a"),
        (":smiling_face_with_3_hearts:", "\U0001f970"),
        (":white_smiling_face:", "\u263a\ufe0f"),
        (":100:", "\U0001f4af"),
        (":flag-jp:", FLAG_JP),
        (":jp:", FLAG_JP),
        (":man-bowing:", "\U0001f647\u200d\u2642\ufe0f"),
        (":man-woman-girl-boy:", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
    ],
)
def test_slack_to_plain_emoji(code: str, char: str) -> None:
    assert slack_to_plain(code) == char
    assert slack_to_plain(f"ありがとう{code}です") == f"ありがとう{char}です"


@pytest.mark.parametrize(
    ("code", "char"),
    [
        (":thumbsup::skin-tone-2:", "\U0001f44d\U0001f3fb"),
        (":thumbsup::skin-tone-3:", THUMBS_MEDIUM_LIGHT),
        (":+1::skin-tone-4:", "\U0001f44d\U0001f3fd"),
        (":wave::skin-tone-5:", "\U0001f44b\U0001f3fe"),
        (":pray::skin-tone-6:", "\U0001f64f\U0001f3ff"),
        # the modifier replaces VS16 rather than following it
        (":v::skin-tone-3:", "\u270c\U0001f3fc"),
    ],
)
def test_slack_to_plain_skin_tones(code: str, char: str) -> None:
    assert slack_to_plain(code) == char


@pytest.mark.parametrize(
    "text",
    [
        ":our_logo:",
        ":our_logo::skin-tone-3:",
        "10:30:45",
        "10:30",
        "12:00:00 に会いましょう",
        "ratio 3:2:1",
        "::",
        ":::",
        ": smile :",
        ":Smile:",
        "http://example.com:8080/",
        "a:b",
    ],
)
def test_slack_to_plain_leaves_non_emoji_colons(text: str) -> None:
    assert slack_to_plain(text) == text


def test_slack_to_plain_unknown_code_does_not_swallow_next_code() -> None:
    assert slack_to_plain("x:zz:smile:") == "x:zz\U0001f604"
    assert slack_to_plain("10:30:smile:") == "10:30\U0001f604"
    assert slack_to_plain(":our_logo::tada:") == ":our_logo:\U0001f389"
