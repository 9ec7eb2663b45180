"""The Slack adapter's rendering of the core's texts: mentions and links. Pure functions."""

from __future__ import annotations

import pytest

from bridge.adapters.slack.render import render
from bridge.core.parts import GroupMention, OnDuty, Text, ThreadLink, UserMention


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (("相談 #12 ", UserMention("U1"), " が担当"), "相談 #12 <@U1> が担当"),
        ((GroupMention("S1"), " 緊急"), "<!subteam^S1> 緊急"),
        ((OnDuty(), " 未返信"), "<!here> 未返信"),
        (("見る: ", ThreadLink(12, "1800000000.000100")), "見る: https://slack.com/archives/CCASES/p1800000000000100"),
        (("見る: ", ThreadLink(12, None)), "見る: "),  # no thread yet: no link
        ((":rotating_light: *緊急* <!here>",), ":rotating_light: *緊急* <!here>"),  # the policy's own mrkdwn
        ((), ""),
    ],
)
def test_each_part_as_slack_shows_it(text: Text, shown: str) -> None:
    assert render(text, channel="CCASES") == shown
