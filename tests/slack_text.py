"""Texts from the core as Slack shows them, for assertions on what counsellors read."""

from __future__ import annotations

from bridge.adapters.slack.render import render
from bridge.core.parts import Text

CHANNEL = "CCASES"  # the case channel of the unit tests


def slack(text: Text) -> str:
    """The text rendered by the Slack adapter, links to threads of CHANNEL."""
    return render(text, channel=CHANNEL)
