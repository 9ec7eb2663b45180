"""Raw Slack events into core events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.adapters.slack.markup import slack_to_plain
from bridge.adapters.slack.names import CONTROL_EVENT
from bridge.core.events import (
    ControlRequested,
    ControlVia,
    Ignored,
    InboundEvent,
    MemberChanged,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
)
from bridge.core.ids import MessageTs, SlackUserId, ThreadTs


def _thread_message(raw: Mapping[str, Any], channel: str) -> ThreadMessage:
    return ThreadMessage(
        channel=str(raw.get("channel") or channel),
        ts=MessageTs(str(raw.get("ts") or "")),
        thread_ts=ThreadTs(str(raw["thread_ts"])) if raw.get("thread_ts") else None,
        user=SlackUserId(str(raw["user"])) if raw.get("user") else None,
        # The core sees what a child would read: mentions, links, entities and emoji codes
        # already turned into plain text (markup.py).
        text=slack_to_plain(str(raw.get("text") or "")),
        subtype=str(raw["subtype"]) if raw.get("subtype") else None,
        bot_id=str(raw["bot_id"]) if raw.get("bot_id") else None,
    )


def parse_event(raw: Mapping[str, Any]) -> InboundEvent:
    """Translate a Slack message event into a core event. Never raises."""
    if raw.get("type") == CONTROL_EVENT:
        if not raw.get("user"):
            return Ignored("control request without a user")
        if raw.get("via") not in set(ControlVia):
            return Ignored("control request made no known way")
        return ControlRequested(
            action=str(raw.get("action") or "hold"),  # requests recorded before there were other actions
            text=str(raw.get("text") or raw.get("case_text") or ""),
            user=SlackUserId(str(raw["user"])),
            via=ControlVia(raw["via"]),
            reason=str(raw.get("reason") or ""),
            thread_ts=ThreadTs(str(raw["thread_ts"])) if raw.get("thread_ts") else None,
            channel=str(raw["channel"]) if raw.get("channel") else None,
        )
    if raw.get("type") in ("member_joined_channel", "member_left_channel"):
        if not raw.get("user") or not raw.get("channel"):
            return Ignored("membership event without a user or channel")
        return MemberChanged(
            channel=str(raw["channel"]),
            user=SlackUserId(str(raw["user"])),
            joined=raw["type"] == "member_joined_channel",
        )
    if raw.get("type") != "message":
        return Ignored(f"slack {raw.get('type')} event")
    channel = str(raw.get("channel") or "")
    subtype = raw.get("subtype")
    if subtype == "message_changed":
        current, previous = raw.get("message"), raw.get("previous_message")
        if isinstance(current, Mapping) and isinstance(previous, Mapping):
            return ThreadEdit(
                channel=channel,
                previous=_thread_message(previous, channel),
                current=_thread_message(current, channel),
            )
        return Ignored("message_changed without both versions")
    if subtype == "message_deleted":
        previous = raw.get("previous_message")
        if isinstance(previous, Mapping):
            return ThreadDelete(channel=channel, previous=_thread_message(previous, channel))
        return Ignored("message_deleted without the previous version")
    return _thread_message(raw, channel)
