"""Slack request verification: the v0 signature over the raw body, within its time window."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs

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


def body_is_well_formed(body: bytes, content_type: str | None) -> bool:
    """True if Bolt can parse the body (JSON for events, a form for commands and actions)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if (content_type or "").startswith("application/x-www-form-urlencoded"):
        payload = parse_qs(text).get("payload")
        if payload:
            try:
                return isinstance(json.loads(payload[0]), dict)
            except ValueError:
                return False
        return True
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
