"""Signed bodies that are hostile JSON, over real HTTP to the web process: each is refused whole
with 400 (never a 500, never part of it kept), except lone surrogates, which are kept as U+FFFD."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from bridge.adapters.json_body import MAX_DEPTH, MAX_NUMBER_DIGITS
from bridge.adapters.line.webhook import MAX_EVENTS
from bridge.adapters.redis.keys import Keys
from tests.conftest import Bridge, interactive, line_text_event
from tests.test_webhooks_e2e import redis_snapshot

pytestmark = pytest.mark.redis

CHILD = "U" + "7" * 32


@pytest.fixture
def web_only(bridge_factory: Any) -> Bridge:
    """No worker: whatever the web process recorded stays in the stream, where the test looks."""
    bridge: Bridge = bridge_factory(worker=0)
    return bridge


def line_body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": "U" + "0" * 32, "events": list(events)}).encode()


def with_raw(body: bytes, key: str, raw: bytes, *, before: bytes = b"}]") -> bytes:
    """body with "key": raw added to the object that closes just before its last ``before`` (for
    a LINE body its last event): raw JSON that json.dumps would not write."""
    end = body.rindex(before)
    return body[:end] + b', "' + key.encode() + b'": ' + raw + body[end:]


def hostile_line_bodies() -> dict[str, bytes]:
    """Each has a valid message first, so a body half taken would leave it in the stream."""
    good = line_text_event(CHILD, "ふつうのメッセージ")
    two = line_body(good, line_text_event(CHILD, "つぎのメッセージ"))
    return {
        "nested past the limit": with_raw(two, "x", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)),
        "nested past Python's parser": with_raw(two, "x", b"[" * 100_000 + b"]" * 100_000),
        "never closed": with_raw(two, "x", b"{" * 100_000),
        "an integer of 5,000 digits": with_raw(two, "timestamp", b"7" * 5000),
        "a number one digit too long": with_raw(two, "timestamp", b"7" * (MAX_NUMBER_DIGITS + 1)),
        "NaN": with_raw(two, "timestamp", b"NaN"),
        f"{MAX_EVENTS + 1} events": line_body(*(line_text_event(CHILD, f"たくさん{i}") for i in range(MAX_EVENTS + 1))),
        "5,000 events": line_body(*({"type": "unknown", "webhookEventId": f"E{i}"} for i in range(5000))),
    }


def test_hostile_line_bodies_are_400_and_nothing_is_kept(web_only: Bridge) -> None:
    before = redis_snapshot(web_only)
    for why, body in hostile_line_bodies().items():
        response = web_only.line_post(body)
        assert response.status_code == 400, f"{why}: {response.status_code} {response.text}"
        assert "error" in response.json(), why
        assert redis_snapshot(web_only) == before, why
    logs = web_only.logs()
    assert logs.count("line webhook rejected") == len(hostile_line_bodies())
    assert "Traceback" not in logs and "Exception" not in logs


def test_a_line_body_at_the_limits_is_taken_whole(web_only: Bridge) -> None:
    events = [line_text_event(CHILD, f"ぜんぶ{i}") for i in range(MAX_EVENTS)]
    body = with_raw(line_body(*events), "x", b"[" * (MAX_DEPTH - 3) + b"9" * MAX_NUMBER_DIGITS + b"]" * (MAX_DEPTH - 3))
    response = web_only.line_post(body)
    assert response.status_code == 200, response.text
    assert web_only.redis.xlen(Keys().inbound) == MAX_EVENTS


def test_a_lone_surrogate_is_recorded_as_a_replacement_character(web_only: Bridge) -> None:
    body = line_body(line_text_event(CHILD, "half \ud83d emoji"), line_text_event(CHILD, "key"))
    body = with_raw(body, "\\udfff", b'"\\udc00"')
    assert b"\\ud83d" in body and b"\\udfff" in body
    assert web_only.line_post(body).status_code == 200
    entries: Any = web_only.redis.xrange(Keys().inbound)  # redis-py types its replies loosely
    recorded = [json.loads(fields[b"body"]) for _, fields in entries]
    assert [event["message"]["text"] for event in recorded] == ["half \ufffd emoji", "key"]
    assert recorded[1]["\ufffd"] == "\ufffd"


# The end of a JSON body naming the fake Slack's workspace and app, as every request from Slack does.
NAMED = b'"team_id": "T0001", "api_app_id": "A0001"}'


def slack_event_body(event: dict[str, Any], *, event_id: str = "EvHOSTILE1") -> bytes:
    named = {"team_id": "T0001", "api_app_id": "A0001"}
    return json.dumps({"type": "event_callback", "event_id": event_id, **named, "event": event}).encode()


def in_event(body: bytes, key: str, raw: bytes) -> bytes:
    """A Slack event body with "key": raw added to its event."""
    return with_raw(body, key, raw, before=b"}}")


def hostile_slack_bodies() -> dict[str, tuple[bytes, str]]:
    """A counsellor's reply with something hostile added, as JSON and as an interaction's form."""
    reply = slack_event_body({"type": "message", "channel": "CCONSULT", "user": "UCOUNSEL1", "text": "x", "ts": "1.2"})
    deep = b"[" * 100_000 + b"]" * 100_000
    as_json = "application/json"
    as_form = "application/x-www-form-urlencoded"
    button = {"type": "block_actions", "user": {"id": "UCOUNSEL1"}, "actions": [{"action_id": "hold_case"}]}
    form_payload = json.dumps(button)[:-1] + ', "x": ' + deep.decode() + "}"
    return {
        "nested past the limit": (in_event(reply, "x", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)), as_json),
        "nested past Python's parser": (in_event(reply, "x", deep), as_json),
        "an integer of 5,000 digits": (in_event(reply, "event_time", b"7" * 5000), as_json),
        "Infinity": (in_event(reply, "event_time", b"Infinity"), as_json),
        "not UTF-8": (reply[:-2] + b'"\xff"}', as_json),
        "an interaction nested past Python's parser": (urlencode({"payload": form_payload}).encode(), as_form),
        "an interaction whose payload is no object": (urlencode({"payload": "[1]"}).encode(), as_form),
    }


def test_hostile_slack_bodies_are_400_and_nothing_is_kept(web_only: Bridge) -> None:
    before = redis_snapshot(web_only)
    for why, (body, content_type) in hostile_slack_bodies().items():
        response = web_only.slack_post(body, content_type=content_type)
        assert response.status_code == 400, f"{why}: {response.status_code} {response.text}"
        assert redis_snapshot(web_only) == before, why
    logs = web_only.logs()
    assert logs.count("slack request rejected") == len(hostile_slack_bodies())
    assert "Traceback" not in logs and "Exception" not in logs


def test_an_events_api_delivery_is_known_by_its_type_not_by_a_substring(web_only: Bridge) -> None:
    # The type written with an escape: an Events API delivery without an event type still gets 200.
    escaped = b'{"type": "event\\u005fcallback", "event_id": "EvESCAPED", "event": {}, ' + NAMED
    assert b'"event_callback"' not in escaped
    response = web_only.slack_post(escaped)
    assert response.status_code == 200, response.text
    # Not an Events API delivery, though its text names one: Bolt's answer (no listener: 404) stands.
    other = b'{"type": "something_else", "note": "event_callback", "event": {"type": "message"}, ' + NAMED
    assert web_only.slack_post(other).status_code == 404
    assert web_only.redis.xlen(Keys().inbound) == 0


def test_lone_surrogates_from_slack_are_recorded_as_replacement_characters(web_only: Bridge) -> None:
    reply = {"type": "message", "channel": "CCONSULT", "user": "UCOUNSEL1", "text": "half \ud83d reply", "ts": "1.2"}
    assert web_only.slack_event({**reply, "thread_ts": "1.1"}, event_id="EvLONE1").status_code == 200
    reason = {"reason": {"reason": {"type": "plain_text_input", "value": "reason \udfff"}}}
    meta = json.dumps({"action": "block", "case": "1"})
    view: dict[str, Any] = {"id": "VSUB1", "type": "modal", "callback_id": "case_control", "private_metadata": meta}
    view["state"] = {"values": reason}
    submission = {"type": "view_submission", "user": {"id": "UCOUNSEL1"}, "team": {"id": "T0001"}, "view": view}
    assert interactive(web_only, submission).status_code == 200
    entries: Any = web_only.redis.xrange(Keys().inbound)
    recorded = [json.loads(fields[b"body"]) for _, fields in entries]
    assert [r.get("text") for r in recorded] == ["half \ufffd reply", "1"]
    assert recorded[1]["reason"] == "reason \ufffd"


@pytest.mark.parametrize("event_id", ["Ev\ud800", "Ev" + "X" * 1000, "Ev\nforged log line", 12345])
def test_a_slack_event_id_not_of_slacks_form_is_replaced_by_a_hash(web_only: Bridge, event_id: Any) -> None:
    event = {"type": "message", "channel": "CCONSULT", "user": "UCOUNSEL1", "text": "x", "ts": "1.2"}
    body = slack_event_body(event, event_id=event_id)
    assert web_only.slack_post(body).status_code == 200
    assert web_only.slack_post(body).status_code == 200  # a retry: dropped by the same hash
    assert web_only.redis.xlen(Keys().inbound) == 1
    keys: Any = web_only.redis.keys(b"br:{in}:seen:*")
    [seen] = keys
    assert re.fullmatch(rb"br:\{in\}:seen:slack:sha256-[0-9a-f]{64}", seen), seen
    assert "forged" not in web_only.logs()
