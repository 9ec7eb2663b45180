"""The Bolt app serving /slack/events: listeners that only record what Slack sent."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bridge.adapters.json_body import without_lone_surrogates
from bridge.adapters.redis.keys import thread_fields
from bridge.adapters.redis.store import Store
from bridge.adapters.slack.names import BUTTON_ACTIONS, COMMANDS, CONTROL_EVENT, CONTROL_VIEW, SHORTCUT
from bridge.adapters.slack.views import notice_view, reason_view, shortcut_view
from bridge.core.case import parse_case_number
from bridge.core.channels import pool_of
from bridge.core.events import ControlVia
from bridge.core.policy import Policy
from bridge.core.rules.controls import ACTIONS, REASON_REQUIRED, split_command

log = logging.getLogger("bridge.slack")


def build_bolt_app(
    *,
    signing_secret: str,
    client: AsyncWebClient,
    store: Store,
    policy: Policy,
    case_channels: tuple[str, ...] = (),
) -> AsyncApp:
    """The Bolt app serving /slack/events. Listeners only record; the worker decides.

    case_channels: every channel cases open in (SLACK_CHANNEL_ID, and a pool's others); the
    controls act in each of them and nowhere else (empty: anywhere, for tests of the listeners).

    Listeners run before the response (process_before_response), so Slack hears 200 only
    once the event is in Redis, and retries otherwise. The only Web API call made here is
    views.open, which must use the trigger within three seconds.
    """
    bot_token = client.token or ""

    async def authorize(**_: Any) -> AuthorizeResult:
        # A single workspace with a known bot token: no auth.test round trip on the web path (the
        # web process asks it once at start, to know which app and workspace requests must name).
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
        channel = body.get("channel_id")
        if case_channels and channel not in case_channels:
            # Case controls act only in the case channels; nothing is recorded.
            await ack(policy.render("control_wrong_channel", command=name))
            return
        await _record_control(
            store,
            policy,
            body.get("trigger_id"),
            COMMANDS[name],
            body.get("text"),
            body.get("user_id"),
            ControlVia.COMMAND,
            channel=channel,
        )
        await ack()  # the answer comes as an ephemeral message once the request is decided

    for name in COMMANDS:
        app.command(name)(command)

    async def button(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        user = _dig(body, "user", "id")
        name = next((n for n, a in BUTTON_ACTIONS.items() if a == action.get("action_id")), "")
        channel = _dig(body, "channel", "id")
        if case_channels and channel not in (*case_channels, None):
            await ack()  # a root's buttons exist only in the case channels: nothing to record
            log.warning("slack button outside the case channels ignored")
            return
        if name in REASON_REQUIRED:  # nothing to record yet: the window's submission is the request
            await ack()
            view = reason_view(policy, action=name, case_text=str(action.get("value") or ""), channel=_text(channel))
            await _open_view(client, body.get("trigger_id"), view)
            return
        await _record_control(
            store, policy, action.get("action_ts"), name, action.get("value"), user, ControlVia.BUTTON, channel=channel
        )
        await ack()

    for action_id in BUTTON_ACTIONS.values():
        app.action(action_id)(button)

    @app.shortcut(SHORTCUT)
    async def shortcut(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel = _dig(body, "channel", "id")
        if case_channels and channel not in case_channels:
            # Case controls act only on threads of the case channels: say so, record nothing.
            said = policy.render("control_wrong_channel", command=policy.render("modal_title"))
            await _open_view(client, body.get("trigger_id"), notice_view(policy, said))
            return
        thread_ts = str(_dig(body, "message", "thread_ts") or _dig(body, "message", "ts") or "")
        view = shortcut_view(policy, thread_ts=thread_ts, channel=_text(channel))
        await _open_view(client, body.get("trigger_id"), view)

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
        via = ControlVia.SHORTCUT if meta.get("thread_ts") else ControlVia.BUTTON
        if action not in BUTTON_ACTIONS:  # not a window of ours, or no action chosen: nothing to record
            await ack()
            return
        if action in REASON_REQUIRED and not reason.strip():
            # Said in the window itself, which stays open; nothing is recorded.
            await ack(response_action="errors", errors={"reason": policy.render("modal_reason_required")})
            return
        await _record_control(
            store,
            policy,
            _dig(body, "view", "id"),
            action,
            meta.get("case"),
            user,
            via,
            reason=reason,
            thread_ts=meta.get("thread_ts"),
            channel=meta.get("channel"),
        )
        await ack()  # closes the window; the result shows in the thread or as an ephemeral line

    @app.event("member_joined_channel")
    @app.event("member_left_channel")
    async def record_membership(body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        event_id = _request_id(body.get("event_id"), event)
        await store.record_events("slack", [(event_id, _dumps(event))])
        log.info("slack membership event recorded event_id=%s", event_id)

    @app.event("message")
    async def record_message(body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        event_id = _request_id(body.get("event_id"), event)
        # In the partition of the thread's case (if the thread is one): a counsellor's answer is
        # decided in order with the child's messages (adapters/redis/partitions.py).
        thread_ts, channel = event.get("thread_ts"), event.get("channel")
        fields = _thread_fields(thread_ts, channel, policy)
        recorded = await store.record_for_case("slack", event_id, _dumps(event), thread_fields=fields)
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
    policy: Policy,
    request_id: Any,
    action: str,
    text: Any,
    user: Any,
    via: ControlVia,
    *,
    reason: str = "",
    thread_ts: Any = None,
    channel: Any = None,
) -> None:
    """Record a control request as it came; Slack's retries of it are dropped by its id.
    The worker checks everything about it (membership, role, number, reason, the channel)."""
    control = {
        "type": CONTROL_EVENT,
        "action": action,
        "text": str(text or ""),
        "reason": reason,
        "user": str(user or ""),
        "via": via.value,
        "thread_ts": str(thread_ts) if thread_ts else None,
        "channel": _text(channel),
    }
    key = _request_id(request_id, control)
    # In the partition of the case it names, by thread or number, so it is decided in order with
    # the case's other events (the worker still checks everything about it).
    fields = _thread_fields(thread_ts, channel, policy)
    named = str(text or "")
    number = parse_case_number(split_command(named)[0] if via is ControlVia.COMMAND else named)
    await store.record_for_case(
        "slack", f"control:{key}", _dumps(control), thread_fields=fields, case=str(number) if number else None
    )
    log.info("slack control recorded action=%s via=%s", action if action in ACTIONS else "?", via)


def _thread_fields(thread_ts: Any, channel: Any, policy: Policy) -> tuple[str, ...]:
    """Where a thread's case is looked for in by-thread (keys.thread_fields: with a pool of
    case channels, by channel and ts); none for a message outside a thread."""
    if not isinstance(thread_ts, str) or not thread_ts or len(thread_ts) > 40:
        return ()
    return thread_fields(thread_ts, _text(channel) or None, pool_of(policy))


def _dumps(value: Any) -> str:
    """A recorded event or request: ASCII JSON, with every lone surrogate (which a client may still
    send escaped, and which is no character) as U+FFFD."""
    return json.dumps(without_lone_surrogates(value))


# Slack's ids as Slack writes them: Ev0123ABCD, 1700000000.123456, 12345.678.abcdef, V0123ABCD.
_SLACK_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def _request_id(value: Any, content: Any) -> str:
    """Slack's id of an event or request (its retries carry the same one), the key that drops them.
    It goes into a Redis key name and the log, so where it is missing or not of Slack's form, a hash
    of the content stands in."""
    if isinstance(value, str) and _SLACK_ID.fullmatch(value):
        return value
    return "sha256-" + hashlib.sha256(json.dumps(without_lone_surrogates(content), sort_keys=True).encode()).hexdigest()


def _text(value: Any) -> str | None:
    """A string from a payload, or None for anything else (a missing or malformed field)."""
    return value if isinstance(value, str) and value else None


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
