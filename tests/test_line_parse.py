"""Translating LINE webhook events into core events, checked against LINE's own recordings."""

from __future__ import annotations

import json

import pytest

from bridge.adapters.line.webhook import (
    LINE_USER_ID,
    WebhookBodyError,
    parse_event,
    sign,
    signature_is_valid,
    split_webhook_body,
)
from bridge.core.events import ChildFollowed, ChildMessage, ChildUnfollowed, Ignored, Media
from bridge.core.ids import LineUserId
from tests.conftest import line_user_id
from tests.reference import reference_file

USER = line_user_id(1)


def test_signature_round_trip() -> None:
    body = b'{"events":[]}'
    assert signature_is_valid("secret", body, sign("secret", body))
    assert not signature_is_valid("secret", body + b" ", sign("secret", body))
    assert not signature_is_valid("other", body, sign("secret", body))
    assert not signature_is_valid("secret", body, None)


def test_every_recorded_event_kind_parses_without_error() -> None:
    body = reference_file("line-bot-sdk/webhook.json").read_bytes()
    events = split_webhook_body(body)
    assert len(events) == len(json.loads(body)["events"]) == 28
    parsed = [parse_event(json.loads(raw)) for _, raw in events]
    kinds = {type(p).__name__ for p in parsed}
    assert {"ChildMessage", "ChildFollowed", "ChildUnfollowed", "Ignored"} <= kinds
    for raw, event in zip((json.loads(r) for _, r in events), parsed, strict=True):
        if raw.get("source", {}).get("type") in ("group", "room"):
            assert isinstance(event, Ignored)
        if isinstance(event, Ignored):
            assert raw["source"].get("userId", "-") not in event.reason  # reasons are safe to log
        if isinstance(event, ChildMessage) and event.text is None:
            assert event.media is not None and event.media.type == raw["message"]["type"]


def test_dedup_id_is_the_webhook_event_id_or_a_content_hash() -> None:
    events = split_webhook_body(b'{"events": [{"webhookEventId": "01ABC", "type": "x"}, {"type": "y"}]}')
    assert events[0][0] == "01ABC"
    assert events[1][0].startswith("sha256-")
    assert split_webhook_body(b'{"events": [{"type": "y"}]}')[0][0] == events[1][0]


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"events": {}}', b'{"events": ["x"]}', b"\xff"])
def test_bad_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookBodyError):
        split_webhook_body(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"type": "follow", "source": {"type": "user", "userId": USER}, "replyToken": "r", "timestamp": 5},
            ChildFollowed(child_id=LineUserId(USER), event_id="", timestamp_ms=5, reply_token="r"),
        ),
        (
            {"type": "unfollow", "source": {"type": "user", "userId": USER}, "timestamp": 5},
            ChildUnfollowed(child_id=LineUserId(USER), event_id="", timestamp_ms=5),
        ),
        ({"type": "message", "source": {"type": "room", "roomId": "R", "userId": USER}}, Ignored),
        ({"type": "message", "source": {"type": "user"}}, Ignored),
        ({"type": "message", "source": {"type": "user", "userId": USER}}, Ignored),
        ({"type": "message", "source": "nonsense"}, Ignored),
        ({"type": "beacon", "source": {"type": "user", "userId": USER}}, Ignored),
        ({}, Ignored),
    ],
    ids=["follow", "unfollow", "room", "no-user-id", "no-message", "bad-source", "unhandled-type", "empty"],
)
def test_parse_event(raw: dict[str, object], expected: object) -> None:
    event = parse_event(raw)
    if expected is Ignored:
        assert isinstance(event, Ignored)
    else:
        assert event == expected


def test_text_and_sticker_messages() -> None:
    text = parse_event(
        {
            "type": "message",
            "webhookEventId": "E",
            "timestamp": 9,
            "replyToken": "r",
            "source": {"type": "user", "userId": USER},
            "message": {"type": "text", "id": "1", "text": "やあ"},
        }
    )
    assert text == ChildMessage(child_id=LineUserId(USER), event_id="E", timestamp_ms=9, reply_token="r", text="やあ")
    sticker = parse_event(
        {
            "type": "message",
            "source": {"type": "user", "userId": USER},
            "message": {"type": "sticker", "id": "2", "keywords": ["Hi"]},
        }
    )
    assert isinstance(sticker, ChildMessage) and sticker.text is None
    assert sticker.media == Media(type="sticker", keywords=("Hi",))


@pytest.mark.parametrize(
    "user_id",
    [
        "U1",
        "U" + "0" * 31,
        "U" + "0" * 33,
        "U" + "A" * 32,  # upper case
        "u" + "0" * 32,
        "C" + "0" * 32,  # a group's ID
        "U" + "g" * 32,
        " U" + "0" * 32,
        "U" + "0" * 32 + "\n",
        "Uchild0000000000000000000000001",
    ],
)
@pytest.mark.parametrize("kind", ["message", "follow", "unfollow"])
def test_an_event_from_a_user_id_not_of_lines_form_is_ignored(user_id: str, kind: str) -> None:
    raw = {
        "type": kind,
        "source": {"type": "user", "userId": user_id},
        "replyToken": "r",
        "message": {"type": "text", "id": "1", "text": "やあ"},
    }
    event = parse_event(raw)
    assert isinstance(event, Ignored)
    assert user_id.strip() not in event.reason  # the reason is logged
    assert not isinstance(parse_event({**raw, "source": {"type": "user", "userId": USER}}), Ignored)


def test_the_reference_bodys_user_ids_are_of_lines_form() -> None:
    body = json.loads(reference_file("line-bot-sdk/webhook.json").read_bytes())
    ids = {e["source"]["userId"] for e in body["events"] if e.get("source", {}).get("type") == "user"}
    assert ids == {"U206d25c2ea6bd87c17655609a1c37cb8"}
    assert all(LINE_USER_ID.fullmatch(user_id) for user_id in ids)
    assert LINE_USER_ID.fullmatch(USER)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "しにたい", "source": {"type": "user", "userId": USER}},
        {"type": "x\nforged line", "mode": "standby"},
        {"type": "message", "source": {"type": "しにたい\n", "userId": USER}},
        {"type": "a" * 41, "source": {"type": "user", "userId": "U1"}},
    ],
    ids=["type", "standby", "source-type", "long-type"],
)
def test_names_from_the_body_reach_an_ignored_reason_only_if_they_are_names(raw: dict[str, object]) -> None:
    event = parse_event(raw)
    assert isinstance(event, Ignored)
    assert "しにたい" not in event.reason and "\n" not in event.reason and "a" * 41 not in event.reason
    assert "?" in event.reason
