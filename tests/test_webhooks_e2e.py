"""The two webhook endpoints and the health probes, over real HTTP against the web process."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest

from bridge.adapters.redis.keys import Keys
from bridge.adapters.slack import verify as slack_side
from bridge.fakes.server import time_scale
from tests.conftest import SLACK_SIGNING, Bridge, line_text_event, line_user_id

pytestmark = pytest.mark.redis

CHILD = line_user_id(9)
POST = "/api/chat.postMessage"


def client_timeout() -> float:
    """How long a request of the test may wait for the web process: generous, and scaled."""
    return 10 * time_scale()


def redis_snapshot(bridge: Bridge) -> dict[Any, Any]:
    """Every data key and its content (the worker's own leases left out: they come and go)."""
    snapshot: dict[Any, Any] = {}
    for key in bridge.redis.scan_iter():
        if b"lease" in key:
            continue
        # A stream's dump also holds the router's consumer bookkeeping; compare its entries.
        is_stream = bridge.redis.type(key) == b"stream"
        snapshot[key] = bridge.redis.xrange(key) if is_stream else bridge.redis.dump(key)
    return snapshot


def nothing_sent(bridge: Bridge) -> bool:
    return not bridge.fake_slack.requests_to("/api/chat.postMessage") and not bridge.fake_line.requests


@pytest.mark.parametrize(
    ("signature", "why"),
    [(None, "missing"), ("", "empty"), ("bm90IGEgc2lnbmF0dXJl", "wrong"), ("!!!", "not base64")],
)
def test_line_bad_signature_is_401_and_changes_nothing(bridge: Bridge, signature: str | None, why: str) -> None:
    before = redis_snapshot(bridge)
    body = json.dumps({"events": [line_text_event(CHILD, "x")]}).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Line-Signature"] = signature
    response = httpx.post(bridge.url + "/line/webhook", content=body, headers=headers, timeout=client_timeout())
    assert response.status_code == 401, why
    bridge.wait_settled()  # had anything been recorded, it would have been routed and sent by now
    assert redis_snapshot(bridge) == before
    assert nothing_sent(bridge)


def test_line_signature_over_other_bytes_is_401(bridge: Bridge) -> None:
    body = json.dumps({"events": [line_text_event(CHILD, "x")]}).encode()
    from bridge.adapters.line.webhook import sign

    response = bridge.line_post(body + b" ", signature=sign("test-line-channel-secret", body))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"events": "no"}', b'{"events": [1, 2]}', b"\xff\xfe"],
    ids=["broken", "array", "events-not-list", "events-not-objects", "not-utf8"],
)
def test_line_malformed_body_with_valid_signature_is_400(bridge: Bridge, body: bytes) -> None:
    before = redis_snapshot(bridge)
    response = bridge.line_post(body)
    assert response.status_code == 400
    assert "error" in response.json()
    bridge.wait_settled()
    assert redis_snapshot(bridge) == before


def test_line_oversized_body_is_413(bridge: Bridge) -> None:
    body = json.dumps({"events": [line_text_event(CHILD, "あ" * (400 * 1024))]}).encode()
    assert len(body) > 1024 * 1024
    before = redis_snapshot(bridge)
    assert bridge.line_post(body).status_code == 413
    bridge.wait_settled()
    assert redis_snapshot(bridge) == before


def test_line_url_check_and_unknown_events_are_acknowledged(bridge: Bridge) -> None:
    assert bridge.line_post(b'{"destination": "Ubot", "events": []}').status_code == 200
    odd = {
        "type": "somethingNew",
        "mode": "active",
        "timestamp": 1,
        "webhookEventId": "01NEW",
        "source": {"type": "user", "userId": CHILD},
        "deliveryContext": {"isRedelivery": False},
    }
    assert bridge.line_events(odd).status_code == 200
    marker = line_text_event(CHILD, "後のメッセージ")
    assert bridge.line_events(marker).status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.messages()) == 2)
    bridge.wait_settled()  # the odd event is decided too (it comes first in the stream)
    assert len(bridge.fake_slack.messages()) == 2
    assert "Traceback" not in bridge.logs()


def test_an_event_from_a_user_id_not_of_lines_form_opens_no_case(bridge: Bridge) -> None:
    odd_ids = ["Uchild0000000000000000000000009", "U" + "A" * 32, "U1"]
    for user_id in odd_ids:
        assert bridge.line_events(line_text_event(user_id, "きえるはずのことば")).status_code == 200
    assert bridge.line_events(line_text_event(CHILD, "のこることば")).status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.messages()) == 2)
    bridge.wait_settled()
    root, words = bridge.fake_slack.messages()
    assert "#1" in root["text"] and words["text"] == "のこることば"  # the case is #1: no number was taken
    assert not bridge.fake_line.requests  # and no one was answered
    ignored = [line for line in bridge.logs().splitlines() if "not of LINE's form" in line]
    assert len(ignored) == len(odd_ids)  # logged, without the ID (the privacy scan at teardown checks)


def test_line_webhook_answers_while_slack_is_down(bridge: Bridge) -> None:
    # Slack takes the post but does not answer until the test says so: a web process that
    # waited on Slack could not answer before that (line_events would time out).
    bridge.fake_slack.stall(POST)
    assert bridge.line_events(line_text_event(CHILD, "すぐ返事")).status_code == 200
    assert not bridge.fake_slack.messages(), "Slack answered before the webhook did"
    # The event was recorded and the worker is posting it; Slack has not answered yet.
    bridge.fake_slack.wait_for(lambda: any(r.status == 0 for r in bridge.fake_slack.requests_to(POST)))
    assert not bridge.fake_slack.messages()
    bridge.fake_slack.unstall(POST)
    bridge.fake_slack.wait_for(
        lambda: [m["text"] for m in bridge.fake_slack.messages() if m["thread_ts"]] == ["すぐ返事"]
    )


def slack_body(event: dict[str, Any], event_id: str = "Ev1") -> bytes:
    named = {"team_id": "T0001", "api_app_id": "A0001"}  # the fake Slack's workspace and app
    return json.dumps({"type": "event_callback", "event_id": event_id, **named, "event": event}).encode()


@pytest.mark.parametrize("case", ["missing", "wrong", "stale", "future"])
def test_slack_bad_or_stale_signature_is_401_and_changes_nothing(bridge: Bridge, case: str) -> None:
    before = redis_snapshot(bridge)
    body = slack_body(
        {"type": "message", "channel": "CCONSULT", "user": "U1", "text": "x", "ts": "1.2", "thread_ts": "1.1"}
    )
    headers = {"Content-Type": "application/json"}
    if case == "wrong":
        headers.update(slack_side.sign("another-secret", body))
    elif case == "stale":
        headers.update(slack_side.sign(SLACK_SIGNING, body, timestamp=int(time.time()) - 301))
    elif case == "future":
        # More than five minutes ahead even when the request arrives as late as the client would
        # wait: a bare +301 was inside the window once the request took the rest of the second.
        ahead = 301 + math.ceil(client_timeout())
        headers.update(slack_side.sign(SLACK_SIGNING, body, timestamp=int(time.time()) + ahead))
    response = httpx.post(bridge.url + "/slack/events", content=body, headers=headers, timeout=client_timeout())
    assert response.status_code == 401
    bridge.wait_settled()
    assert redis_snapshot(bridge) == before


def test_slack_malformed_and_oversized_bodies(bridge: Bridge) -> None:
    before = redis_snapshot(bridge)
    assert bridge.slack_post(b"{oops").status_code == 400
    assert bridge.slack_post(b"payload=%7Bbroken", content_type="application/x-www-form-urlencoded").status_code == 400
    big = b'{"type": "event_callback", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert bridge.slack_post(big).status_code == 413
    bridge.wait_settled()
    assert redis_snapshot(bridge) == before


def test_slack_url_verification(bridge: Bridge) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"}).encode()
    response = bridge.slack_post(body)
    assert response.status_code == 200
    assert "abc123" in response.text


def test_health_probes(bridge: Bridge) -> None:
    assert httpx.get(bridge.url + "/healthz", timeout=client_timeout()).json() == {"status": "ok"}
    assert httpx.get(bridge.url + "/readyz", timeout=client_timeout()).status_code == 200


def test_no_schema_or_docs_pages_are_served(bridge: Bridge) -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        response = httpx.get(bridge.url + path, timeout=client_timeout())
        assert response.status_code == 404, path
        assert "openapi" not in response.text.lower() and "/line/webhook" not in response.text, path


def test_readyz_is_503_without_redis(bridge_factory: Any) -> None:
    from bridge.fakes.harness import free_port

    bridge: Bridge = bridge_factory(worker=0, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert httpx.get(bridge.url + "/healthz", timeout=client_timeout()).status_code == 200
    assert httpx.get(bridge.url + "/readyz", timeout=1.5 * client_timeout()).status_code == 503
    # With Redis down the webhooks cannot record, so they must not claim success.
    assert bridge.line_events(line_text_event(CHILD, "x")).status_code == 503
    slack = bridge.slack_event(
        {"type": "message", "channel": "CCONSULT", "user": "U1", "text": "x", "ts": "1.2", "thread_ts": "1.1"}
    )
    assert slack.status_code == 503
    assert "Traceback" not in bridge.logs()


def test_a_burst_beyond_the_web_redis_pool_waits_instead_of_failing(bridge_factory: Any) -> None:
    """More webhooks in flight than the web has Redis connections: each waits for one, none
    is refused, and every message is recorded once."""
    from concurrent.futures import ThreadPoolExecutor

    bridge: Bridge = bridge_factory(worker=0, BRIDGE_WEB_REDIS_CONNECTIONS="2")
    bodies = [
        json.dumps({"events": [line_text_event(line_user_id(0xB000 + i), f"burst {i}")]}).encode() for i in range(60)
    ]
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda body: bridge.line_post(body).status_code, bodies))
    assert statuses == [200] * 60
    assert bridge.redis.xlen(Keys().inbound) == 60
    assert "MaxConnectionsError" not in bridge.logs() and "recording failed" not in bridge.logs()


def test_a_lone_surrogate_from_a_client_is_relayed_not_refused(bridge: Bridge) -> None:
    # json.dumps escapes the lone surrogate as \\ud83d: valid JSON, but not valid UTF-16 text.
    body = json.dumps({"events": [line_text_event(CHILD, "half \ud83d emoji")]}).encode()
    assert b"\\ud83d" in body
    response = bridge.line_post(body)
    assert response.status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.messages()) == 2)
    assert bridge.fake_slack.messages()[1]["text"] == "half \ufffd emoji"  # kept as U+FFFD from the start
