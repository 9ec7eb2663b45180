"""How the fake Slack reads a Web API call's arguments (slack_sdk sends some as GET params, some
as form posts, some as JSON) and pages its answers, as Slack does."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SlackError", "json_field", "paginate", "truthy", "ts_key", "valid_blocks"]


class SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def truthy(value: Any) -> bool:
    # slack_sdk turns bools into "1"/"0" for GET params; JSON bodies keep real bools.
    return value is True or (isinstance(value, int | str) and str(value).lower() in ("1", "true"))


def ts_key(ts: str, error: str = "invalid_ts") -> tuple[int, int]:
    # Compare as (seconds, micros) integers: "1.5" and "1.500000" are the same instant.
    seconds, _, micros = ts.partition(".")
    try:
        return int(seconds), int(micros.ljust(6, "0")[:6])
    except ValueError:
        raise SlackError(error) from None


def json_field(args: dict[str, Any], name: str, error: str) -> Any:
    """Form posts carry structured fields (blocks, metadata) as JSON strings."""
    value = args.get(name)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error) from None
    return value


def valid_blocks(blocks: Any) -> bool:
    """Slack's documented limits a message's blocks must keep: at most 50 blocks, a section's
    text a text object (plain_text or mrkdwn) of 1 to 3,000 characters."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return False
        text = block.get("text")
        if block["type"] == "section" and text is not None:
            if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
                return False
            if not isinstance(text.get("text"), str) or not 1 <= len(text["text"]) <= 3000:
                return False
    return True


def paginate(items: list[dict[str, Any]], args: dict[str, Any], default_limit: int) -> dict[str, Any]:
    """Cursor pagination; the cursor is just the offset, which is opaque to clients."""
    try:
        limit = int(args.get("limit") or default_limit)
        offset = int(args.get("cursor") or 0)
    except ValueError:
        raise SlackError("invalid_cursor") from None
    limit = max(1, limit)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
    }
