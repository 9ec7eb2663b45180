"""Slack requests are bound to the app and workspace the web process learned from auth.test and
bots.info at start: a correctly signed request from another app or workspace changes nothing,
and until Slack has said who the bot token is, no Slack request is taken."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.fakes.server import time_scale
from bridge.fakes.slack import FakeSlack
from tests.conftest import CHANNEL, Bridge, interactive, line_text_event, slash_command
from tests.test_relay_e2e import CHILD, open_case, recorded

pytestmark = pytest.mark.redis

COUNSELLOR = "UCOUNSEL1"
REPLY = "こんにちは、相談員です"
STRANGERS = {"another app": {"app": "A9999"}, "another workspace": {"team": "T9999"}}


def reply_event(
    bridge: Bridge, root_ts: str, reply_ts: str, *, app: str | None = None, team: str | None = None
) -> httpx.Response:
    """A counsellor's reply in the case thread, delivered by the Events API."""
    event = {"type": "message", "channel": CHANNEL, "channel_type": "group", "user": COUNSELLOR}
    return bridge.slack_event({**event, "text": REPLY, "ts": reply_ts, "thread_ts": root_ts}, app=app, team=team)


def close_button(bridge: Bridge, *, app: str | None = None, team: str | None = None) -> httpx.Response:
    """The root's close button for case 1, pressed (block_actions)."""
    action = {"action_id": "close_case", "value": "1", "type": "button", "action_ts": str(time.time())}
    payload = {
        "type": "block_actions",
        "api_app_id": app or bridge.fake_slack.app_id,
        "team": {"id": team or bridge.fake_slack.team_id},
        "user": {"id": COUNSELLOR},
        "channel": {"id": CHANNEL},
        "trigger_id": f"trig-{time.time_ns()}",
        "actions": [action],
    }
    response: httpx.Response = interactive(bridge, payload)
    return response


def shortcut(bridge: Bridge, root_ts: str, *, app: str | None = None, team: str | None = None) -> httpx.Response:
    """The message shortcut on the case's root (message_action; Slack sends it without api_app_id,
    so another app's is one that names its app anyway)."""
    payload: dict[str, Any] = {
        "type": "message_action",
        "callback_id": "case_actions",
        "team": {"id": team or bridge.fake_slack.team_id},
        "user": {"id": COUNSELLOR},
        "channel": {"id": CHANNEL},
        "trigger_id": f"trig-{time.time_ns()}",
        "message_ts": root_ts,
        "message": {"type": "message", "ts": root_ts, "text": "..."},
    }
    if app:
        payload["api_app_id"] = app
    response: httpx.Response = interactive(bridge, payload)
    return response


def closed(bridge: Bridge) -> bool:
    return bool(bridge.redis.hget("br:{cases}:case:1", "status") == b"closed" and bridge.fake_line.texts_to(CHILD))


# Each kind of request: how to send it (to the case opened at root_ts), and when it has acted.
KINDS: dict[str, tuple[Callable[..., httpx.Response], Callable[[Bridge], bool]]] = {
    "event": (
        lambda bridge, root_ts, reply_ts, **who: reply_event(bridge, root_ts, reply_ts, **who),
        lambda bridge: bridge.fake_line.texts_to(CHILD) == [REPLY],
    ),
    "slash command": (
        lambda bridge, root_ts, reply_ts, **who: slash_command(bridge, "/close", "1", user=COUNSELLOR, **who),
        closed,
    ),
    "button": (lambda bridge, root_ts, reply_ts, **who: close_button(bridge, **who), closed),
    "shortcut": (
        lambda bridge, root_ts, reply_ts, **who: shortcut(bridge, root_ts, **who),
        lambda bridge: len(bridge.fake_slack.views()) == 1,
    ),
}


@pytest.mark.parametrize("stranger", list(STRANGERS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_signed_request_from_another_app_or_workspace_changes_nothing(
    bridge: Bridge, kind: str, stranger: str
) -> None:
    send, acted = KINDS[kind]
    root_ts = open_case(bridge, CHILD)
    reply_ts = str(bridge.fake_slack.add_message(CHANNEL, REPLY, user=COUNSELLOR, thread_ts=root_ts)["ts"])
    bridge.wait_settled()
    stream, slack_calls, line_calls = recorded(bridge), len(bridge.fake_slack.requests), len(bridge.fake_line.requests)

    response = send(bridge, root_ts, reply_ts, **STRANGERS[stranger])
    if kind == "event":  # 200 with nothing done: Slack would retry a refusal in vain
        assert response.status_code == 200 and response.json() == {"ignored": "not for this app and workspace"}
    else:
        assert response.status_code == 403 and response.json() == {"error": "not for this app and workspace"}
    bridge.wait_settled()
    assert recorded(bridge) == stream  # nothing went into the inbound stream
    assert bridge.fake_slack.requests[slack_calls:] == []  # nothing posted, no window opened
    assert bridge.fake_line.requests[line_calls:] == []  # the child heard nothing
    assert bridge.redis.hget("br:{cases}:case:1", "status") == b"open"
    said = "api_app_id A9999 is not this app's (A0001)" if stranger == "another app" else "team T9999 is not"
    assert f"slack request refused: {said}" in bridge.processes[0].log()

    # The same request from this app and workspace acts.
    response = send(bridge, root_ts, reply_ts)
    assert response.status_code == 200, response.text
    bridge.fake_slack.wait_for(lambda: acted(bridge), message=f"the {kind} from this app did not act")


def test_until_slack_says_who_the_bot_token_is_slack_requests_are_refused_with_503(
    bridge_factory: Any, fake_slack: FakeSlack
) -> None:
    """Slack unreachable at start: the web process starts anyway and takes LINE's webhooks, but
    refuses every Slack request with 503 (the Events API retries) and keeps asking; once Slack
    answers, the same requests are taken."""
    fake_slack.stall("/api/auth.test")  # auth.test times out until the test lets it answer
    bridge: Bridge = bridge_factory()
    web = bridge.processes[0]
    assert "slack identity not learned (auth.test failed: " in web.log()

    assert bridge.line_events(line_text_event(CHILD, "はじめまして")).status_code == 200
    bridge.fake_slack.wait_for(lambda: bool(bridge.fake_slack.roots(CHANNEL)), message="the case did not open")
    root_ts = bridge.fake_slack.roots(CHANNEL)[0]["ts"]
    reply_ts = str(bridge.fake_slack.add_message(CHANNEL, REPLY, user=COUNSELLOR, thread_ts=root_ts)["ts"])
    stream = recorded(bridge)
    not_ready = {"error": "not ready: this app and workspace are not yet learned from Slack"}
    for response in (slash_command(bridge, "/cases", "", user=COUNSELLOR), reply_event(bridge, root_ts, reply_ts)):
        assert (response.status_code, response.json()) == (503, not_ready)
    assert recorded(bridge) == stream
    assert "slack request refused: this app and workspace are not yet learned from Slack" in web.log()
    # Slack's check of the request URL names no app: it is answered all the same.
    challenge = uuid.uuid4().hex
    verification = bridge.slack_post(f'{{"type": "url_verification", "challenge": "{challenge}"}}'.encode())
    assert verification.status_code == 200 and challenge in verification.text

    fake_slack.unstall("/api/auth.test")
    fake_slack.wait_for(lambda: "slack identity learned app=A0001 team=T0001" in web.log(), timeout=30 * time_scale())
    assert reply_event(bridge, root_ts, reply_ts).status_code == 200  # Slack's retry, say
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(CHILD) == [REPLY])
