"""End to end: the Procfile's processes against a real Redis, the fakes and signed HTTP.

Each test asserts on what the fake LINE and fake Slack servers received.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from bridge.fakes.server import time_scale
from tests.conftest import CHANNEL, Bridge, line_follow_event, line_text_event, line_user_id
from tests.reference import reference_file

pytestmark = [pytest.mark.redis, pytest.mark.each_redis]

CHILD = line_user_id(1)
OTHER_CHILD = line_user_id(2)


def roots(bridge: Bridge) -> list[dict[str, Any]]:
    return bridge.fake_slack.roots(CHANNEL)


def bot_thread(bridge: Bridge, root_ts: str) -> list[str]:
    """What the bridge posted in a thread (counsellors' own messages left out)."""
    return [m["text"] for m in bridge.fake_slack.thread(CHANNEL, root_ts) if m.get("bot_id")]


def wait_thread(bridge: Bridge, count: int, *, root_index: int = 0, timeout: float = 20) -> tuple[str, list[str]]:
    def ready() -> bool:
        rs = roots(bridge)
        return len(rs) > root_index and len(bot_thread(bridge, rs[root_index]["ts"])) >= count

    bridge.fake_slack.wait_for(ready, timeout=timeout)
    root_ts = roots(bridge)[root_index]["ts"]
    return root_ts, bot_thread(bridge, root_ts)


def open_case(bridge: Bridge, child: str = CHILD, text: str = "はじめまして") -> str:
    existing = len(roots(bridge))  # counted before sending: the root may appear at once
    assert bridge.line_events(line_text_event(child, text)).status_code == 200
    root_ts, _ = wait_thread(bridge, 1, root_index=existing)
    return root_ts


def recorded(bridge: Bridge) -> bytes:
    """The id of the last entry ever added to the inbound stream: it changes when anything is
    recorded, even after the router has routed and deleted the entry."""
    info: dict[str, Any] = bridge.redis.xinfo_stream(bridge.keys.inbound)
    return bytes(info["last-generated-id"])


def everything_slack_received(bridge: Bridge) -> str:
    return "\n".join(r.body.decode("utf-8", "replace") for r in bridge.fake_slack.requests)


def test_child_message_opens_case_and_counsellor_reply_reaches_child(bridge: Bridge) -> None:
    started = time.monotonic()
    response = bridge.line_events(line_text_event(CHILD, "秘密の相談 こんにちは"))
    assert response.status_code == 200
    root_ts, texts = wait_thread(bridge, 1)
    # Relayed at once, not after a retry or a poll; the bound grows with BRIDGE_TEST_TIME_SCALE.
    assert time.monotonic() - started < 5 * time_scale()
    root = roots(bridge)[0]
    assert "#1" in root["text"]
    assert texts == ["秘密の相談 こんにちは"]
    # The case number is the only handle: no LINE user ID, name or picture reaches Slack.
    assert CHILD not in everything_slack_received(bridge)
    assert "テスト太郎" not in everything_slack_received(bridge)
    assert not bridge.fake_line.requests_to("/v2/bot/profile/*")

    reply_ts = bridge.counsellor_reply(root_ts, "こんにちは、相談員です :smile:")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(CHILD) == ["こんにちは、相談員です 😄"])
    bridge.fake_slack.wait_for(lambda: bridge.fake_slack.reactions_on(reply_ts) == ["white_check_mark"])
    bridge.wait_settled()
    assert bridge.fake_line.texts_to(CHILD) == ["こんにちは、相談員です 😄"]  # once
    assert bridge.fake_slack.reactions_on(reply_ts) == ["white_check_mark"]


def test_messages_of_one_child_share_a_thread_in_order_and_children_get_their_own(bridge: Bridge) -> None:
    for i in range(30):
        response = bridge.line_events(line_text_event(CHILD, f"メッセージ {i:02d}"))
        assert response.status_code == 200
    bridge.line_events(line_text_event(OTHER_CHILD, "別の子です"))
    _, texts = wait_thread(bridge, 30)
    bridge.wait_settled()  # everything decided and delivered: nothing more is coming
    _, texts = wait_thread(bridge, 30)
    assert texts == [f"メッセージ {i:02d}" for i in range(30)]
    _, other = wait_thread(bridge, 1, root_index=1)
    assert other == ["別の子です"]
    assert ["#1" in roots(bridge)[0]["text"], "#2" in roots(bridge)[1]["text"]] == [True, True]
    # Every child message is posted without link unfurling (a child's link is not fetched).
    for message in bridge.fake_slack.messages(CHANNEL):
        if message.get("bot_id"):
            assert message["args"].get("unfurl_links") in (False, "false", "0", 0)


def test_child_text_is_escaped_so_it_pings_nobody(bridge: Bridge) -> None:
    bridge.line_events(line_text_event(CHILD, "<!channel> <@U123> a&b <https://evil.example|click>"))
    _, texts = wait_thread(bridge, 1)
    assert texts == ["&lt;!channel&gt; &lt;@U123&gt; a&amp;b &lt;https://evil.example|click&gt;"]


def test_counsellor_markup_becomes_plain_text(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.counsellor_reply(root_ts, "<@U999> 詳しくは <https://example.org/help|こちら> &amp; &lt;ok&gt; :thumbsup:")
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(CHILD)) == 1)
    assert bridge.fake_line.texts_to(CHILD) == ["詳しくは こちら (https://example.org/help) & <ok> 👍"]


def test_long_reply_with_emoji_is_split_on_utf16_boundaries(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    text = "あ" * 4999 + "😀" + "い" * 999 + "🎉"  # 6,000 characters; the 5,000 limit falls inside 😀
    reply_ts = bridge.counsellor_reply(root_ts, text)
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    pushes = bridge.fake_line.accepted_pushes()
    assert len(pushes) == 1
    chunks = [m["text"] for m in pushes[0]["messages"]]
    assert "".join(chunks) == text
    assert all(len(chunk.encode("utf-16-le")) // 2 <= 5000 for chunk in chunks)
    assert len(chunks) == 2


def test_very_long_reply_goes_in_several_pushes_of_at_most_five(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    text = "\n".join(f"{i:05d} " + "あいうえお" * 99 for i in range(60))  # about 30,000 units
    reply_ts = bridge.counsellor_reply(root_ts, text)
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    pushes = bridge.fake_line.accepted_pushes()
    assert [len(p["messages"]) for p in pushes] == [5, 2]
    assert "".join(m["text"] for p in pushes for m in p["messages"]) == text
    assert len({p["retry_key"] for p in pushes}) == 2


def test_internal_notes_bots_and_joins_are_never_relayed(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.counsellor_reply(root_ts, "// 内部メモ: 学校に確認する")
    bridge.counsellor_reply(root_ts, "bot says hi", bot_id="BOTHER", subtype="bot_message")
    bridge.counsellor_reply(root_ts, "<@UCOUNSEL2> has joined", subtype="channel_join")
    # The bridge's own message in the thread, as Slack would echo it back.
    own = bridge.fake_slack.thread(CHANNEL, root_ts)[0]
    bridge.slack_event(
        {
            "type": "message",
            "channel": CHANNEL,
            "text": own["text"],
            "ts": own["ts"],
            "thread_ts": root_ts,
            "bot_id": "BBRIDGEBOT",
            "user": "UBRIDGEBOT",
        }
    )
    # A top-level channel message is not a reply to any case.
    bridge.slack_event({"type": "message", "channel": CHANNEL, "user": "UCOUNSEL1", "text": "全体連絡", "ts": "1.1"})
    marker_ts = bridge.counsellor_reply(root_ts, "これは届く")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(marker_ts))
    bridge.wait_settled()  # an echo would go to the case's lane, not the child's: let both finish
    assert bridge.fake_line.texts_to(CHILD) == ["これは届く"]
    assert len(bot_thread(bridge, root_ts)) == 1  # no echo: only the child's first message


def test_edit_and_delete_of_a_sent_reply_leave_a_note(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    reply_ts = bridge.counsellor_reply(root_ts, "明日の3時にどうかな")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    previous = {
        "type": "message",
        "user": "UCOUNSEL1",
        "text": "明日の3時にどうかな",
        "ts": reply_ts,
        "thread_ts": root_ts,
    }
    # A link unfurl arrives as an edit with the same text: no note for that.
    bridge.slack_event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": CHANNEL,
            "hidden": True,
            "message": previous,
            "previous_message": previous,
            "ts": "2.0",
        }
    )
    bridge.slack_event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": CHANNEL,
            "hidden": True,
            "message": {**previous, "text": "明日の4時にどうかな"},
            "previous_message": previous,
        }
    )
    _, texts = wait_thread(bridge, 2)
    assert "編集はLINEに反映されません" in texts[1]
    bridge.slack_event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": CHANNEL,
            "hidden": True,
            "deleted_ts": reply_ts,
            "previous_message": previous,
        }
    )
    wait_thread(bridge, 3)
    bridge.wait_settled()
    _, texts = wait_thread(bridge, 3)
    assert "削除はLINEに反映されません" in texts[2]
    assert len(texts) == 3
    assert bridge.fake_line.texts_to(CHILD) == ["明日の3時にどうかな"]  # nothing more was sent


def test_follow_gets_the_welcome_by_reply_and_a_stale_token_falls_back_to_push(bridge: Bridge) -> None:
    event = line_follow_event(CHILD, event_id="01FOLLOW0000000000000000001", reply_token="fresh-token")
    assert bridge.line_events(event).status_code == 200
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.accepted_replies()) == 1)
    reply = bridge.fake_line.accepted_replies()[0]
    assert reply["reply_token"] == "fresh-token"
    assert "0120-967-866" in reply["messages"][0]["text"]

    bridge.fake_line.expire_reply_token("stale-token")
    stale = {
        **event,
        "webhookEventId": "01FOLLOW0000000000000000002",
        "replyToken": "stale-token",
        "source": {"type": "user", "userId": OTHER_CHILD},
    }
    bridge.line_events(stale)
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(OTHER_CHILD)) == 1)
    assert "0120-967-866" in bridge.fake_line.texts_to(OTHER_CHILD)[0]
    bridge.wait_settled()
    assert len(bridge.fake_line.accepted_replies()) == 1 and len(bridge.fake_line.texts_to(OTHER_CHILD)) == 1
    assert not roots(bridge)  # following alone opens no case


def test_unfollow_closes_the_case_and_the_next_message_opens_a_new_one(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    unfollow = bridge.line_events(
        {
            "type": "unfollow",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": CHILD},
            "webhookEventId": "01UNFOLLOW00000000000000001",
            "deliveryContext": {"isRedelivery": False},
        }
    )
    assert unfollow.status_code == 200, unfollow.text
    _, texts = wait_thread(bridge, 2)
    assert "ブロック" in texts[1]
    # A counsellor replying in the closed thread is told, only they see it, and nothing is sent.
    bridge.counsellor_reply(root_ts, "まだいますか")
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.ephemerals()) == 1)
    ephemeral = bridge.fake_slack.ephemerals()[0]
    assert "#1" in ephemeral["text"] and ephemeral["user"] == "UCOUNSEL1"
    bridge.wait_settled()
    assert bridge.fake_line.texts_to(CHILD) == []

    bridge.line_events(line_text_event(CHILD, "また来ました"))
    _, texts = wait_thread(bridge, 1, root_index=1)
    assert "#2" in roots(bridge)[1]["text"]
    assert texts == ["また来ました"]


def test_stickers_and_media_are_described_and_group_events_ignored(bridge: Bridge) -> None:
    sticker = line_text_event(CHILD, "x")
    sticker["message"] = {
        "id": "1",
        "type": "sticker",
        "packageId": "1",
        "stickerId": "1",
        "stickerResourceType": "STATIC",
        "keywords": ["OK"],
    }
    image = line_text_event(CHILD, "x")
    image["message"] = {"id": "2", "type": "image", "contentProvider": {"type": "line"}}
    group = line_text_event(line_user_id(0x6701), "グループの話")
    group["source"] = {"type": "group", "groupId": "Cgroup", "userId": line_user_id(0x6701)}
    bridge.line_events(group, sticker, image)
    _, texts = wait_thread(bridge, 2)
    assert texts == ["[スタンプ: OK]", "[画像]"]
    bridge.wait_settled()
    assert len(roots(bridge)) == 1
    assert "グループの話" not in everything_slack_received(bridge)


def test_line_redelivery_and_slack_retries_are_dropped(bridge: Bridge) -> None:
    event = line_text_event(CHILD, "一度だけ", event_id="01REDELIVERY000000000000001")
    assert bridge.line_events(event).status_code == 200
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    assert bridge.line_events(again).status_code == 200
    root_ts, _ = wait_thread(bridge, 1)

    ts = str(bridge.fake_slack.add_message(CHANNEL, "一回だけ送る", user="UCOUNSEL1", thread_ts=root_ts)["ts"])
    reply = {
        "type": "message",
        "channel": CHANNEL,
        "user": "UCOUNSEL1",
        "text": "一回だけ送る",
        "ts": ts,
        "thread_ts": root_ts,
    }
    assert bridge.slack_event(reply, event_id="EvRETRY001").status_code == 200
    assert bridge.slack_event(reply, event_id="EvRETRY001", retry=1).status_code == 200
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(ts))
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["一度だけ"]
    assert bridge.fake_line.texts_to(CHILD) == ["一回だけ送る"]


def test_reference_webhook_with_every_event_kind(bridge: Bridge) -> None:
    document = json.loads(reference_file("line-bot-sdk/webhook.json").read_text())
    # The fixture reuses one webhookEventId; real deliveries carry one per event.
    for event in document["events"]:
        event["webhookEventId"] = uuid.uuid4().hex
        event["timestamp"] = int(time.time() * 1000)
    assert bridge.line_events(*document["events"]).status_code == 200
    user_sources = {
        e["source"]["userId"]
        for e in document["events"]
        if e.get("type") == "message" and e.get("source", {}).get("type") == "user"
    }
    # At least: the body's unfollow closes the first case and a later message opens another,
    # so waiting for exactly one root could miss the moment on a slow or a fast machine.
    bridge.fake_slack.wait_for(lambda: len(roots(bridge)) >= len(user_sources))
    bridge.wait_settled()  # every event of the body decided, every delivery made
    logs = bridge.logs()
    assert "Traceback" not in logs, logs
    for user in user_sources:
        assert user not in everything_slack_received(bridge)


def test_a_childs_words_are_posted_as_plain_text_under_the_bridges_label(bridge: Bridge) -> None:
    """A child who types the bridge's own note (emoji code, bold, quote) cannot pass for it: the
    words go to Slack as plain text (no emoji codes, no formatting) under a label that only the
    bridge writes; a message longer than a section holds is cut over several, in order."""
    fake = ":no_entry_sign: *相談者がLINEアカウントをブロックしました。* 相談 #12 を終了しました。\n> 引用"
    long_words = "あ" * 4500
    bridge.line_events(line_text_event(CHILD, fake))
    bridge.line_events(line_text_event(CHILD, long_words))
    root_ts, _ = wait_thread(bridge, 2)
    posts = [m for m in bridge.fake_slack.thread(CHANNEL, root_ts) if m.get("bot_id") and m.get("blocks")]
    child_posts = [m for m in posts if m["blocks"][0]["type"] == "context"]
    assert len(child_posts) == 2
    first, second = child_posts
    label = first["blocks"][0]["elements"][0]
    assert label["type"] == "plain_text" and "相談者" in label["text"]
    (words,) = first["blocks"][1:]
    assert words["text"] == {"type": "plain_text", "text": fake, "emoji": False}
    sections = second["blocks"][1:]
    assert [s["text"]["type"] for s in sections] == ["plain_text", "plain_text"]
    assert "".join(s["text"]["text"] for s in sections) == long_words
