"""The Slack adapter's parsing of events into core events (bridge/adapters/slack/parse.py)."""

from __future__ import annotations

from bridge.adapters.slack.parse import parse_event
from bridge.core.events import ControlRequested, ControlVia, Ignored, ThreadEdit, ThreadMessage


def test_a_thread_message_reaches_the_core_as_plain_text() -> None:
    """The Slack adapter converts a counsellor's markup when it parses the event, so the core
    (and its internal-note check) sees what the child would read."""
    raw = {
        "type": "message",
        "channel": "CCASES",
        "ts": "2.0",
        "thread_ts": "1.0",
        "user": "UC",
        "text": "<@U123|佐藤> さん &amp; <https://example.org|案内> :smile:",
    }
    message = parse_event(raw)
    assert isinstance(message, ThreadMessage)
    assert message.text == "@佐藤 さん & 案内 (https://example.org) \U0001f604"
    edit = parse_event(
        {"type": "message", "subtype": "message_changed", "channel": "CCASES", "message": raw, "previous_message": raw}
    )
    assert isinstance(edit, ThreadEdit) and edit.current.text == edit.previous.text == message.text


def test_a_control_request_made_no_known_way_is_ignored() -> None:
    base = {"type": "bridge_control", "action": "close", "text": "4", "user": "UC"}
    assert isinstance(parse_event({**base, "via": "telepathy"}), Ignored)
    assert isinstance(parse_event(base), Ignored)
    made = parse_event({**base, "via": "button"})
    assert isinstance(made, ControlRequested) and made.via is ControlVia.BUTTON
