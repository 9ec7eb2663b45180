"""The Slack side: request verification, the Bolt app, event translation, the Web API client.

Translation only: raw Slack events become core events; core deliveries become Web API calls
whose outcome is classified as delivered, retry, or failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
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

from bridge.core.controls import ACTIONS, REASON_REQUIRED
from bridge.core.events import (
    ControlRequested,
    Ignored,
    InboundEvent,
    MemberChanged,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
)
from bridge.core.retry import DELIVERED, Outcome
from bridge.policy import Policy
from bridge.store import Store

log = logging.getLogger("bridge.slack")

SIGNATURE_WINDOW_S = 300
CONTROL_EVENT = "bridge_control"
# Root buttons: action_id per case action. Escalate and block ask for a reason in a window first.
BUTTON_ACTIONS = {
    "hold": "hold_case",
    "close": "close_case",
    "escalate": "escalate_case",
    "block": "block_case",
    "unblock": "unblock_case",
}
COMMANDS = {
    "/hold": "hold",
    "/close": "close",
    "/block": "block",
    "/unblock": "unblock",
    "/escalate": "escalate",
    "/cases": "cases",
}
SHORTCUT = "case_actions"  # the message shortcut on any message of a case thread
CONTROL_VIEW = "case_control"  # the window that asks for the action and the reason
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
    *, signing_secret: str, client: AsyncWebClient, store: Store, policy: Policy, cases_channel: str = ""
) -> AsyncApp:
    """The Bolt app serving /slack/events. Listeners only record; the worker decides.

    Listeners run before the response (process_before_response), so Slack hears 200 only
    once the event is in Redis, and retries otherwise. The only Web API call made here is
    views.open, which must use the trigger within three seconds.
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
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Bolt's default handler logs the exception's text; ours logs its type only.
        # Events API deliveries always get 503, so Slack retries them: one may carry a
        # counsellor's reply. For commands and interactions (never retried): 503 when Redis is
        # down, 400 when Bolt could not read the payload (its matchers index fields a
        # malformed payload lacks; our listeners read defensively).
        if isinstance(error, RedisError | OSError) or body.get("type") == "event_callback":
            log.error("slack request not recorded error=%s", type(error).__name__)
            return BoltResponse(status=503, body="")
        if isinstance(error, TypeError | KeyError | AttributeError | IndexError | ValueError):
            log.warning("slack request rejected: unreadable payload error=%s", type(error).__name__)
            return BoltResponse(status=400, body="malformed body")
        log.error("slack listener failed error=%s", type(error).__name__)
        return BoltResponse(status=500, body="")

    async def command(ack: Any, body: dict[str, Any]) -> None:
        name = str(body.get("command") or "")
        if cases_channel and body.get("channel_id") != cases_channel:
            # Case controls act only in the case channel; nothing is recorded.
            await ack(policy.render("control_wrong_channel", command=name))
            return
        await _record_control(
            store, body.get("trigger_id"), COMMANDS[name], body.get("text"), body.get("user_id"), "command"
        )
        await ack()  # the answer comes as an ephemeral message once the request is decided

    for name in COMMANDS:
        app.command(name)(command)

    async def button(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        user = _dig(body, "user", "id")
        name = next((n for n, a in BUTTON_ACTIONS.items() if a == action.get("action_id")), "")
        if name in REASON_REQUIRED:  # nothing to record yet: the window's submission is the request
            await ack()
            view = reason_view(policy, action=name, case_text=str(action.get("value") or ""))
            await _open_view(client, body.get("trigger_id"), view)
            return
        await _record_control(store, action.get("action_ts"), name, action.get("value"), user, "button")
        await ack()

    for action_id in BUTTON_ACTIONS.values():
        app.action(action_id)(button)

    @app.shortcut(SHORTCUT)
    async def shortcut(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        thread_ts = str(_dig(body, "message", "thread_ts") or _dig(body, "message", "ts") or "")
        await _open_view(client, body.get("trigger_id"), shortcut_view(policy, thread_ts=thread_ts))

    @app.view(CONTROL_VIEW)
    async def submitted(ack: Any, body: dict[str, Any]) -> None:
        values = _dig(body, "view", "state", "values")
        try:
            meta = json.loads(str(_dig(body, "view", "private_metadata") or "{}"))
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        action = str(meta.get("action") or _dig(values, "action", "action", "selected_option", "value") or "")
        reason = str(_dig(values, "reason", "reason", "value") or "")
        user = _dig(body, "user", "id")
        via = "shortcut" if meta.get("thread_ts") else "button"
        if action not in BUTTON_ACTIONS:  # not a window of ours, or no action chosen: nothing to record
            await ack()
            return
        if action in REASON_REQUIRED and not reason.strip():
            # Said in the window itself, which stays open; nothing is recorded.
            await ack(response_action="errors", errors={"reason": policy.render("modal_reason_required")})
            return
        await _record_control(
            store,
            _dig(body, "view", "id"),
            action,
            meta.get("case"),
            user,
            via,
            reason=reason,
            thread_ts=meta.get("thread_ts"),
        )
        await ack()  # closes the window; the result shows in the thread or as an ephemeral line

    @app.event("member_joined_channel")
    @app.event("member_left_channel")
    async def record_membership(body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        event_id = str(body.get("event_id") or "")
        if not event_id:
            event_id = "sha256-" + hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
        await store.record_events("slack", [(event_id, json.dumps(event))])
        log.info("slack membership event recorded event_id=%s", event_id)

    @app.event("message")
    async def record_message(body: dict[str, Any]) -> None:
        event_id = str(body.get("event_id") or "")
        event = body.get("event") or {}
        if not event_id:
            event_id = "sha256-" + hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
        recorded = await store.record_events("slack", [(event_id, json.dumps(event))])
        log.info("slack event recorded event_id=%s new=%d", event_id, recorded)

    # Last, so it serves only what no listener above takes: every Events API delivery is answered
    # 200 (Bolt would answer 404, and Slack turns off the subscriptions of an app that keeps
    # failing). Nothing is recorded; the log names the event type only in a safe form.
    @app.event(re.compile(r".*"))
    async def ignore_other_events(body: dict[str, Any]) -> None:
        event = body.get("event")
        kind = event.get("type") if isinstance(event, dict) else None
        log.info("slack event ignored type=%s", _safe_name(kind))

    return app


def _safe_name(value: Any) -> str:
    """A name from a request, fit for a log line: letters, digits and _ only, at most 40."""
    text = value if isinstance(value, str) else ""
    return text if text and len(text) <= 40 and re.fullmatch(r"[A-Za-z0-9_]+", text) else "?"


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


async def _record_control(
    store: Store,
    request_id: Any,
    action: str,
    text: Any,
    user: Any,
    via: str,
    *,
    reason: str = "",
    thread_ts: Any = None,
) -> None:
    """Record a control request as it came; Slack's retries of it are dropped by its id.
    The worker checks everything about it (membership, role, number, reason)."""
    control = {
        "type": CONTROL_EVENT,
        "action": action,
        "text": str(text or ""),
        "reason": reason,
        "user": str(user or ""),
        "via": via,
        "thread_ts": str(thread_ts) if thread_ts else None,
    }
    key = str(request_id or hashlib.sha256(json.dumps(control, sort_keys=True).encode()).hexdigest())
    await store.record_events("slack", [(f"control:{key}", json.dumps(control))])
    log.info("slack control recorded action=%s via=%s", action if action in ACTIONS else "?", via)


def _dig(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


async def _open_view(client: AsyncWebClient, trigger_id: Any, view: dict[str, Any]) -> None:
    try:
        await client.views_open(trigger_id=str(trigger_id or ""), view=view)
    except Exception as exc:  # the person sees no window and can use the command instead
        log.warning("views.open failed error=%s", type(exc).__name__)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _reason_input(policy: Policy, *, optional: bool) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "reason",
        "optional": optional,
        "label": _plain(policy.render("modal_reason_label")),
        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 500},
    }


def reason_view(policy: Policy, *, action: str, case_text: str) -> dict[str, Any]:
    """The window a root button opens for an action that needs a reason (escalate, block)."""
    number = int(case_text) if case_text.isdigit() else 0
    heading = f"{policy.render('modal_case_label', case=number)}: {policy.render('action_' + action)}"
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"action": action, "case": case_text}),
        "blocks": [{"type": "section", "text": _plain(heading)}, _reason_input(policy, optional=False)],
    }


def shortcut_view(policy: Policy, *, thread_ts: str) -> dict[str, Any]:
    """The window the message shortcut opens: which action, and the reason or memo."""
    options = [
        {"text": _plain(policy.render(f"action_{name}")[:75]), "value": name}
        for name in ("close", "escalate", "hold", "block", "unblock")
    ]
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"thread_ts": thread_ts}),
        "blocks": [
            {
                "type": "input",
                "block_id": "action",
                "label": _plain(policy.render("modal_action_label")),
                "element": {"type": "static_select", "action_id": "action", "options": options},
            },
            _reason_input(policy, optional=True),
        ],
    }


def root_blocks(
    text: str, *, case: int, buttons: list[tuple[str, str]], close_confirm: str | None = None
) -> list[dict[str, Any]]:
    """The root message's blocks: its text, and a button per (action, label) offered."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    elements = []
    for action, label in buttons:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": BUTTON_ACTIONS[action],
            "value": str(case),
            "text": _plain(label),
        }
        if action in REASON_REQUIRED:  # the weighty ones
            element["style"] = "danger"
        if action == "close" and close_confirm:
            element["confirm"] = {
                "title": _plain(label),
                "text": _plain(close_confirm),
                "confirm": _plain(label),
                "deny": _plain("×"),
            }
        elements.append(element)
    if elements:
        blocks.append({"type": "actions", "elements": elements})
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
        return ControlRequested(
            action=str(raw.get("action") or "hold"),  # requests recorded before there were other actions
            text=str(raw.get("text") or raw.get("case_text") or ""),
            user=str(raw["user"]),
            via=str(raw.get("via") or ""),
            reason=str(raw.get("reason") or ""),
            thread_ts=str(raw["thread_ts"]) if raw.get("thread_ts") else None,
        )
    if raw.get("type") in ("member_joined_channel", "member_left_channel"):
        if not raw.get("user") or not raw.get("channel"):
            return Ignored("membership event without a user or channel")
        return MemberChanged(
            channel=str(raw["channel"]), user=str(raw["user"]), joined=raw["type"] == "member_joined_channel"
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

    async def channel_members(self) -> list[str]:
        """Everyone in the case channel (all pages). Raises SlackApiError or a network error."""
        members: list[str] = []
        cursor = None
        while True:
            response = await self.web.conversations_members(channel=self.channel, limit=1000, cursor=cursor)
            members += [str(m) for m in response.get("members") or []]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    async def usergroup_members(self, usergroup: str) -> list[str]:
        """The members of a user group. Raises SlackApiError or a network error."""
        response = await self.web.usergroups_users_list(usergroup=usergroup)
        return [str(u) for u in response.get("users") or []]

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
