"""The LINE side: webhook verification and parsing, and the Messaging API client.

Translation only: raw webhook events become core events; core deliveries become API calls
whose outcome is classified as delivered, retry, or failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)

from bridge.core.events import ChildFollowed, ChildMessage, ChildUnfollowed, Ignored, InboundEvent, Media
from bridge.core.retry import DELIVERED, Outcome

log = logging.getLogger("bridge.line")


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


def split_webhook_body(body: bytes) -> list[tuple[str, str]]:
    """Parse a callback body into (dedup id, event JSON) pairs, one per event.

    The dedup id is the event's webhookEventId (stable across LINE's redeliveries); an
    event without one falls back to a hash of its content. Raises WebhookBodyError.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookBodyError("body is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise WebhookBodyError("body must be an object with an 'events' list")
    events = []
    for event in document["events"]:
        if not isinstance(event, dict):
            raise WebhookBodyError("each event must be an object")
        encoded = json.dumps(event, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
        event_id = event.get("webhookEventId")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
            event_id = "sha256-" + hashlib.sha256(encoded.encode()).hexdigest()
        events.append((event_id, encoded))
    return events


def parse_event(raw: Mapping[str, Any]) -> InboundEvent:
    """Translate one webhook event into a core event. Never raises; odd input is Ignored."""
    event_type = raw.get("type")
    if raw.get("mode") == "standby":
        # Another channel (module) is answering this chat; the bridge must stay silent.
        return Ignored(f"{event_type} in standby mode")
    source = raw.get("source") if isinstance(raw.get("source"), Mapping) else {}
    assert isinstance(source, Mapping)
    source_type = source.get("type")
    if source_type != "user":
        return Ignored(f"{event_type} from a {source_type} source")
    child_id = source.get("userId")
    if not isinstance(child_id, str) or not child_id:
        return Ignored(f"{event_type} without a user id")
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
    return Ignored(f"{event_type} events are not handled")


def _child_message(
    message: Mapping[str, Any], child_id: str, event_id: str, timestamp_ms: int, reply_token: str | None
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


# --- the Messaging API client ---------------------------------------------------------


class LineClient:
    """Pushes and replies through line-bot-sdk v3 (async).

    Keeps two configurations: the SDK sends content downloads to Configuration.host when
    host is set, and content lives on the data API host.
    """

    def __init__(self, *, access_token: str, api_base_url: str, data_api_base_url: str, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._api_client = AsyncApiClient(Configuration(host=api_base_url, access_token=access_token))
        self._data_client = AsyncApiClient(Configuration(host=data_api_base_url, access_token=access_token))
        self.messaging = AsyncMessagingApi(self._api_client)

    async def close(self) -> None:
        await self._api_client.close()
        await self._data_client.close()

    async def push(self, to: str, texts: tuple[str, ...], retry_key: str) -> Outcome:
        request = PushMessageRequest(to=to, messages=[TextMessage(text=t) for t in texts])
        try:
            await self.messaging.push_message_with_http_info(
                request, x_line_retry_key=retry_key, _request_timeout=self._timeout_s
            )
        except ApiException as exc:
            if exc.status == 409:
                return DELIVERED  # this retry key was accepted before: the child has it
            return _classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome("retry", f"network: {type(exc).__name__}", ambiguous=True)
        return DELIVERED

    async def reply(self, reply_token: str, texts: tuple[str, ...]) -> Outcome:
        request = ReplyMessageRequest(reply_token=reply_token, messages=[TextMessage(text=t) for t in texts])
        try:
            await self.messaging.reply_message_with_http_info(request, _request_timeout=self._timeout_s)
        except ApiException as exc:
            if exc.status == 400:
                return Outcome("reply_token_rejected", "reply token no longer valid")
            return _classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome("retry", f"network: {type(exc).__name__}", ambiguous=True)
        return DELIVERED


def _classify(exc: ApiException) -> Outcome:
    status = int(exc.status or 0)
    if status == 429 or status >= 500:
        retry_after = None
        headers = exc.headers or {}
        value = headers.get("Retry-After") or headers.get("retry-after")
        if value and str(value).isdigit():
            retry_after = float(value)
        return Outcome("retry", f"LINE answered {status}", retry_after)
    return Outcome("failed", f"LINE refused the message ({status}{_line_message(exc)})")


def _line_message(exc: ApiException) -> str:
    # LINE's error body has a short English message (never the message content we sent).
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message[:120]}" if isinstance(message, str) and message else ""
