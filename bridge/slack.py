"""The Slack side: request verification, the Bolt app, event translation, the Web API client.

Translation only: raw Slack events become core events; core deliveries become Web API calls
whose outcome is classified as delivered, retry, or failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from redis.exceptions import RedisError
from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.core.events import HoldRequested, Ignored, InboundEvent, ThreadDelete, ThreadEdit, ThreadMessage
from bridge.core.retry import DELIVERED, Outcome
from bridge.store import Store

log = logging.getLogger("bridge.slack")

SIGNATURE_WINDOW_S = 300
HOLD_ACTION = "hold_case"
CONTROL_EVENT = "bridge_control"
_LOOKUP_PAGES = 10  # up to 2,000 messages since the delivery was queued
DELIVERY_EVENT_TYPE = "bridge_delivery"
CASE_EVENT_TYPE = "bridge_case"

# Errors that a person can fix (a revoked token, the bot not invited): keep the delivery
# and retry, so the child's words arrive once the workspace is set up again.
_RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "team_access_not_granted",
    }
)


# --- request verification ---------------------------------------------------------------


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


# --- the Bolt app ----------------------------------------------------------------------


def build_bolt_app(
    *, signing_secret: str, client: AsyncWebClient, store: Store, cases_channel: str = "", wrong_channel_text: str = ""
) -> AsyncApp:
    """The Bolt app serving /slack/events. Listeners only record; the worker decides.

    Listeners run before the response (process_before_response), so Slack hears 200 only
    once the event is in Redis, and retries otherwise.
    """
    bot_token = client.token or ""

    async def authorize(**_: Any) -> AuthorizeResult:
        # A single workspace with a known bot token: no auth.test round trip on the web path.
        return AuthorizeResult(enterprise_id=None, team_id=None, bot_token=bot_token)

    app = AsyncApp(
        signing_secret=signing_secret,
        client=client,
        authorize=authorize,
        process_before_response=True,
        ignoring_self_events_enabled=False,  # the core drops bot messages itself
        logger=_bolt_logger(),
    )

    @app.error
    async def on_error(error: Exception) -> BoltResponse:
        # Bolt's default handler logs the exception's text; ours logs its type only. 503 when
        # the event could not be recorded, so Slack retries it.
        unavailable = isinstance(error, RedisError | OSError)
        log.error("slack listener failed error=%s", type(error).__name__)
        return BoltResponse(status=503 if unavailable else 500, body="")

    @app.command("/hold")
    async def hold_command(ack: Any, body: dict[str, Any]) -> None:
        if cases_channel and body.get("channel_id") != cases_channel:
            await ack(wrong_channel_text)  # case controls act only in the case channel; nothing recorded
            return
        await _record_control(store, body.get("trigger_id"), body.get("text"), body.get("user_id"), "command")
        await ack()  # the answer comes as an ephemeral message once the request is decided

    @app.action(HOLD_ACTION)
    async def hold_button(ack: Any, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id")
        await _record_control(store, action.get("action_ts"), action.get("value"), user, "button")
        await ack()

    @app.event("message")
    async def record_message(body: dict[str, Any]) -> None:
        event_id = str(body.get("event_id") or "")
        event = body.get("event") or {}
        if not event_id:
            event_id = "sha256-" + hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
        recorded = await store.record_events("slack", [(event_id, json.dumps(event))])
        log.info("slack event recorded event_id=%s new=%d", event_id, recorded)

    return app


class _DropIntendedWarnings(logging.Filter):
    """Bolt warns that a token goes unused when a client and authorize are given: we mean it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "will be unused" not in message and "will be ignored" not in message


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("bridge.bolt")
    if not any(isinstance(f, _DropIntendedWarnings) for f in logger.filters):
        logger.addFilter(_DropIntendedWarnings())
    return logger


async def _record_control(store: Store, request_id: Any, case_text: Any, user: Any, via: str) -> None:
    """Record a counsellor's control request; Slack's retries of it are dropped by its id."""
    control = {"type": CONTROL_EVENT, "case_text": str(case_text or ""), "user": str(user or ""), "via": via}
    key = str(request_id or hashlib.sha256(json.dumps(control, sort_keys=True).encode()).hexdigest())
    await store.record_events("slack", [(f"control:{key}", json.dumps(control))])
    log.info("slack control recorded via=%s", via)


def root_blocks(text: str, *, case: int, button: str | None) -> list[dict[str, Any]]:
    """The root message's blocks: its text, and the hold button while it can be used."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if button:
        element = {
            "type": "button",
            "action_id": HOLD_ACTION,
            "value": str(case),
            "text": {"type": "plain_text", "text": button},
        }
        blocks.append({"type": "actions", "elements": [element]})
    return blocks


# --- translation ---------------------------------------------------------------------


def _thread_message(raw: Mapping[str, Any], channel: str) -> ThreadMessage:
    return ThreadMessage(
        channel=str(raw.get("channel") or channel),
        ts=str(raw.get("ts") or ""),
        thread_ts=str(raw["thread_ts"]) if raw.get("thread_ts") else None,
        user=str(raw["user"]) if raw.get("user") else None,
        text=str(raw.get("text") or ""),
        subtype=str(raw["subtype"]) if raw.get("subtype") else None,
        bot_id=str(raw["bot_id"]) if raw.get("bot_id") else None,
    )


def parse_event(raw: Mapping[str, Any]) -> InboundEvent:
    """Translate a Slack message event into a core event. Never raises."""
    if raw.get("type") == CONTROL_EVENT:
        if not raw.get("user"):
            return Ignored("control request without a user")
        return HoldRequested(case_text=str(raw.get("case_text") or ""), user=str(raw["user"]), via=str(raw.get("via")))
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


# --- the Web API client ----------------------------------------------------------------


class SlackClient:
    """Posts to the consultation channel through slack_sdk's AsyncWebClient.

    The SDK's own retries are off: the delivery queue retries, and it checks whether an
    earlier attempt already landed before posting again.
    """

    def __init__(self, *, token: str, base_url: str, channel: str, timeout_s: float) -> None:
        self.channel = channel
        # One long-lived session: without it slack_sdk opens a connection (and in production
        # a TLS handshake) for every call. Must be built inside the running event loop.
        # slack_sdk applies its timeout only to sessions it makes itself, so this one carries it.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        self.web = AsyncWebClient(
            token=token, base_url=base_url, timeout=int(max(1, timeout_s)), retry_handlers=[], session=self._session
        )

    async def close(self) -> None:
        await self._session.close()

    async def post(
        self,
        *,
        text: str,
        thread_ts: str | None,
        event_type: str,
        payload: dict[str, Any],
        channel: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> tuple[Outcome, str | None]:
        """Post a message (to the case channel unless told otherwise); returns the outcome and
        the new message's ts when delivered."""
        try:
            response = await self.web.chat_postMessage(
                channel=channel or self.channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": event_type, "event_payload": payload},
            )
        except Exception as exc:
            return _classify(exc), None
        return DELIVERED, str(response.get("ts"))

    async def find_posted(
        self,
        *,
        thread_ts: str | None,
        oldest: float,
        event_type: str,
        key: str,
        value: Any,
        channel: str | None = None,
    ) -> tuple[bool, str | None]:
        """Look for a message an earlier attempt posted, by its metadata.

        Returns (looked, ts): looked is False when Slack could not be asked (then the caller
        must not post again yet); ts is the message's ts when it was found.
        """
        cursor = None
        for _ in range(_LOOKUP_PAGES):
            try:
                if thread_ts:
                    response = await self.web.conversations_replies(
                        channel=channel or self.channel,
                        ts=thread_ts,
                        oldest=f"{oldest:.6f}",
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                else:
                    response = await self.web.conversations_history(
                        channel=channel or self.channel,
                        oldest=f"{oldest:.6f}",
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
            except Exception as exc:
                log.warning("slack lookup failed error=%s", type(exc).__name__)
                return False, None
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == event_type and payload.get(key) == value:
                    return True, str(message.get("ts"))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return True, None
        return True, None

    async def update(self, *, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> Outcome:
        """Replace a message's text and blocks (the case root's state line). Idempotent."""
        try:
            await self.web.chat_update(channel=self.channel, ts=ts, text=text, blocks=blocks or [])
        except Exception as exc:
            return _classify(exc)
        return DELIVERED

    async def react(self, *, ts: str, name: str) -> Outcome:
        try:
            await self.web.reactions_add(channel=self.channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") == "already_reacted":
                return DELIVERED
            return _classify(exc)
        except Exception as exc:
            return _classify(exc)
        return DELIVERED

    async def post_ephemeral(self, *, user: str, thread_ts: str | None, text: str) -> Outcome:
        try:
            await self.web.chat_postEphemeral(channel=self.channel, user=user, text=text, thread_ts=thread_ts)
        except Exception as exc:
            return _classify(exc)
        return DELIVERED


def _classify(exc: Exception) -> Outcome:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error") or "")
        if status == 429 or error == "ratelimited":
            value = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            retry_after = float(value) if value and str(value).isdigit() else 1.0
            return Outcome("retry", "Slack rate limit", retry_after)
        if status >= 500 or error in _RETRY_ERRORS:
            return Outcome("retry", f"Slack error {error or status}")
        return Outcome("failed", f"Slack refused: {error or status}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return Outcome("retry", f"network: {type(exc).__name__}", ambiguous=True)
    return Outcome("retry", f"unexpected: {type(exc).__name__}")
