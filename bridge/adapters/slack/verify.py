"""Slack request verification: the v0 signature over the raw body, within its time window, and
the body read once as the payload Bolt will see."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qsl

from bridge.adapters import json_body

SIGNATURE_WINDOW_S = 300


def signature_is_valid(
    signing_secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
) -> bool:
    """Slack's v0 signature over the raw body, with its five-minute timestamp window."""
    if not timestamp or not signature:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - sent_at) > SIGNATURE_WINDOW_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def sign(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with body (used by tests, the demo and the benchmark)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


class MalformedBody(ValueError):
    """The body is no payload Bolt can read; the message says why without quoting it."""


def payload_of(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request's payload, read as Bolt will read it (slack_bolt.request.internals.parse_body):
    JSON when the content type is application/json or the body starts with "{" (the Events API),
    otherwise a form whose "payload" field, if it has one, is JSON (interactions) and which is the
    payload itself if not (slash commands). The JSON is read within json_body's limits, so Bolt's
    own parse of the same text cannot fail on it. Raises MalformedBody."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("body is not UTF-8") from None
    if not text:
        raise MalformedBody("body is empty")
    if (content_type or "").split(";")[0] == "application/json" or text.startswith("{"):
        document = _json(body)
    elif "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        document = {} if payload is None else _json(payload.encode())
    else:
        return dict(parse_qsl(text, keep_blank_values=True))
    if not isinstance(document, dict):
        raise MalformedBody("payload is not a JSON object")
    return document


def _json(body: bytes) -> Any:
    try:
        return json_body.loads(body)
    except json_body.JsonBodyError as exc:
        raise MalformedBody(str(exc)) from None
