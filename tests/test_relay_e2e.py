"""End to end: the Procfile's processes against a real Redis, the fakes and signed HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CHANNEL, Bridge, line_text_event

pytestmark = pytest.mark.redis

CHILD = "Uchild0000000000000000000000001"


def roots(bridge: Bridge) -> list[dict[str, Any]]:
    return bridge.fake_slack.roots(CHANNEL)


def thread_texts(bridge: Bridge, root_ts: str) -> list[str]:
    return [m["text"] for m in bridge.fake_slack.thread(CHANNEL, root_ts)]


def test_child_message_opens_case_and_counsellor_reply_reaches_child(bridge: Bridge) -> None:
    response = bridge.line_events(line_text_event(CHILD, "秘密の相談 こんにちは"))
    assert response.status_code == 200
    bridge.fake_slack.wait_for(lambda: len(roots(bridge)) == 1 and thread_texts(bridge, roots(bridge)[0]["ts"]))
    root = roots(bridge)[0]
    assert "#1" in root["text"]
    assert thread_texts(bridge, root["ts"]) == ["秘密の相談 こんにちは"]

    reply_ts = bridge.counsellor_reply(root["ts"], "こんにちは、相談員です :smile:")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(CHILD) == ["こんにちは、相談員です 😄"])
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
