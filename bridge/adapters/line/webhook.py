"""LINE webhooks: the signature over the raw body, the body split into events, and each event
translated into a core event (unknown kinds become Ignored, so new LINE features never break us)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from bridge.adapters import json_body
from bridge.core.events import ChildFollowed, ChildMessage, ChildUnfollowed, Ignored, InboundEvent, Media
from bridge.core.ids import LineUserId

log = logging.getLogger("bridge.line")

# A LINE user ID as LINE writes it (webhook.yml, CallbackRequest.destination: "U[0-9a-f]{32}").
LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")
# Events in one webhook body. LINE's deliveries carry one or a few; a body with more is refused
# whole (400), so no part of it is kept.
MAX_EVENTS = 100


class WebhookBodyError(ValueError):
    """The webhook body is not a LINE callback request; the message is safe to return."""


def signature_is_valid(channel_secret: str, body: bytes, signature: str | None) -> bool:
    """LINE's X-Line-Signature: base64(HMAC-SHA256(channel secret, raw body))."""
    if not signature:
        return False
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode())


def sign(channel_secret: str, body: bytes) -> str:
    """The signature LINE would send for body (used by tests, the demo and the benchmark)."""
    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()


def split_webhook_events(body: bytes) -> list[tuple[str, str, str | None]]:
    """Parse a callback body into (dedup id, event JSON, the source's user ID or None), one per
    event (the user ID picks the event's partition: adapters/redis/partitions.py).

    The dedup id is the event's webhookEventId (stable across LINE's redeliveries); an
    event without one falls back to a hash of its content. Raises WebhookBodyError for a body
    that is not a callback request or exceeds a limit (json_body's, MAX_EVENTS): then no event
    of it is kept. A lone surrogate in the body is kept as U+FFFD.
    """
    try:
        document = json_body.loads(body)
    except json_body.JsonBodyError as exc:
        raise WebhookBodyError(str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise WebhookBodyError("body must be an object with an 'events' list")
    if len(document["events"]) > MAX_EVENTS:
        raise WebhookBodyError(f"body has more than {MAX_EVENTS} events")
    events = []
    for event in document["events"]:
        if not isinstance(event, dict):
            raise WebhookBodyError("each event must be an object")
        encoded = json.dumps(event, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
        event_id = event.get("webhookEventId")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
            event_id = "sha256-" + hashlib.sha256(encoded.encode()).hexdigest()
        source = event.get("source")
        user = source.get("userId") if isinstance(source, dict) else None
        events.append((event_id, encoded, user if isinstance(user, str) else None))
    return events


def split_webhook_body(body: bytes) -> list[tuple[str, str]]:
    """split_webhook_events without the user IDs: (dedup id, event JSON) pairs."""
    return [(event_id, encoded) for event_id, encoded, _ in split_webhook_events(body)]


def parse_event(raw: Mapping[str, Any]) -> InboundEvent:
    """Translate one webhook event into a core event. Never raises; odd input is Ignored."""
    event_type = raw.get("type")
    kind = _loggable(event_type)  # the reasons go into the log: a name from the body only if it is one
    if raw.get("mode") == "standby":
        # Another channel (module) is answering this chat; the bridge must stay silent.
        return Ignored(f"{kind} in standby mode")
    source = raw.get("source") if isinstance(raw.get("source"), Mapping) else {}
    assert isinstance(source, Mapping)
    source_type = source.get("type")
    if source_type != "user":
        return Ignored(f"{kind} from a {_loggable(source_type)} source")
    user_id = source.get("userId")
    if not isinstance(user_id, str) or not user_id:
        return Ignored(f"{kind} without a user id")
    if not LINE_USER_ID.fullmatch(user_id):  # never a child LINE could push to: no case for it
        return Ignored(f"{kind} from a user id not of LINE's form")
    child_id = LineUserId(user_id)
    event_id = str(raw.get("webhookEventId") or "")
    timestamp = raw.get("timestamp")
    timestamp_ms = int(timestamp) if isinstance(timestamp, int | float) and math.isfinite(timestamp) else 0
    reply_token = raw.get("replyToken") if isinstance(raw.get("replyToken"), str) else None

    if event_type == "message":
        message = raw.get("message")
        if not isinstance(message, Mapping):
            return Ignored("message event without a message")
        return _child_message(message, child_id, event_id, timestamp_ms, reply_token)
    if event_type == "follow":
        return ChildFollowed(child_id=child_id, event_id=event_id, timestamp_ms=timestamp_ms, reply_token=reply_token)
    if event_type == "unfollow":
        return ChildUnfollowed(child_id=child_id, event_id=event_id, timestamp_ms=timestamp_ms)
    return Ignored(f"{kind} events are not handled")


def _loggable(name: Any) -> str:
    """A type name from a body, fit for a log line: letters and digits (LINE's are camelCase), at
    most 40; anything else is "?"."""
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "?"


def _child_message(
    message: Mapping[str, Any], child_id: LineUserId, event_id: str, timestamp_ms: int, reply_token: str | None
) -> ChildMessage:
    message_type = str(message.get("type") or "unknown")
    text = message.get("text") if message_type == "text" else None
    media = None
    if not isinstance(text, str):
        text = None
        keywords = message.get("keywords")
        duration = message.get("duration")
        media = Media(
            type=message_type,
            keywords=tuple(str(k) for k in keywords) if isinstance(keywords, list) else (),
            file_name=str(message["fileName"]) if "fileName" in message else None,
            duration_ms=int(duration) if isinstance(duration, int | float) and math.isfinite(duration) else None,
            title=str(message["title"]) if message.get("title") else None,
        )
    return ChildMessage(
        child_id=child_id,
        event_id=event_id,
        timestamp_ms=timestamp_ms,
        reply_token=reply_token,
        text=text,
        media=media,
    )
