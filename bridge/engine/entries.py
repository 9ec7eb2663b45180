"""Inbound entries as the core sees them: the event an entry records, and its time."""

from __future__ import annotations

import json
from typing import Any

from bridge.adapters import operator
from bridge.adapters.line.webhook import parse_event as parse_line_event
from bridge.adapters.redis.codec import as_text
from bridge.adapters.slack.parse import parse_event as parse_slack_event
from bridge.core.events import InboundEvent, timer_fired


def entry_time(entry_id: str) -> float:
    """The time Redis recorded an entry: the same on every replay, so decisions repeat."""
    return int(entry_id.split("-")[0]) / 1000


def parse_entry(fields: dict[Any, Any]) -> InboundEvent:
    """The core event an inbound entry records. Raises for an entry that cannot be read."""
    source = as_text(fields.get(b"source", fields.get("source", b"")))
    body = as_text(fields.get(b"body", fields.get("body", b"{}")))
    if source == "timer":
        return timer_fired(body)
    raw = json.loads(body)
    if source == operator.SOURCE:
        return operator.parse_event(raw)
    return parse_line_event(raw) if source == "line" else parse_slack_event(raw)
