"""Cases spread over a pool of two case channels, end to end: the Procfile's web and worker, a
real Redis, the fake LINE and Slack servers. Fake Slack gives the same ts in both channels (as
Slack may: a ts is unique only within its channel), so every thread lookup is tested against a
thread of the same ts in the other channel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.fakes.harness import ALWAYS_OPEN, write_policy
from bridge.fakes.slack import FakeSlack
from tests.conftest import CHANNEL, MEMBERS, Bridge, interactive, line_text_event, line_user_id, slash_command
from tests.test_controls_e2e import shortcut, submit

pytestmark = [pytest.mark.redis, pytest.mark.each_redis]

SECOND = "CCONSULT2"
OUTSIDE = "CELSEWHERE"
A, B = line_user_id(0x61), line_user_id(0x62)
ONLY_IN_SECOND = "UCOUNSEL9"  # a counsellor in the second channel only


@pytest.fixture
def pooled(bridge_factory: Any, fake_slack: FakeSlack, tmp_path: Path) -> Bridge:
    fake_slack.set_members(CHANNEL, list(MEMBERS))
    fake_slack.set_members(SECOND, [ONLY_IN_SECOND])
    fake_slack.same_ts_in_every_channel(time.time())
    settings: dict[str, dict[str, object]] = {
        "floods": {"max_messages": 0, "max_stickers": 0},
        "slack": {"case_channels": [CHANNEL, SECOND]},
    }
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, name="pool.toml", settings=settings)
    made: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    return made


def bot_thread(bridge: Bridge, channel: str, root_ts: str) -> list[str]:
    return [m["text"] for m in bridge.fake_slack.thread(channel, root_ts) if m.get("bot_id")]


def wait_root(bridge: Bridge, channel: str) -> str:
    """The ts of the one case root in the channel, once its first thread post is there."""

    def ready() -> bool:
        roots = bridge.fake_slack.roots(channel)
        return len(roots) == 1 and bool(bot_thread(bridge, channel, roots[0]["ts"]))

    bridge.fake_slack.wait_for(ready, message=f"a case thread in {channel}")
    return str(bridge.fake_slack.roots(channel)[0]["ts"])


def reply_in(bridge: Bridge, channel: str, thread_ts: str, text: str, *, user: str = ONLY_IN_SECOND) -> str:
    """A counsellor's reply in a thread of this channel, stored in fake Slack and sent as its event."""
    ts = str(bridge.fake_slack.add_message(channel, text, user=user, thread_ts=thread_ts)["ts"])
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "thread_ts": thread_ts}
    assert bridge.slack_event({**event, "channel_type": "group"}).status_code == 200
    return ts


def latest_root(bridge: Bridge, channel: str, root_ts: str) -> str:
    updates = bridge.fake_slack.updates_of(root_ts, channel)
    return str(updates[-1]["text"] if updates else bridge.fake_slack.message(root_ts, channel)["text"])


def test_cases_spread_over_two_channels_and_everything_works_in_the_second(pooled: Bridge) -> None:
    bridge, slack, line = pooled, pooled.fake_slack, pooled.fake_line
    bridge.line_events(line_text_event(A, "ひとりめです"))
    first = wait_root(bridge, CHANNEL)  # case 1: SLACK_CHANNEL_ID
    bridge.line_events(line_text_event(B, "ふたりめです"))
    second = wait_root(bridge, SECOND)  # case 2: the next channel of the pool
    assert first == second  # the same ts in both channels: two threads all the same
    assert "#1" in slack.message(first, CHANNEL)["text"] and "#2" in slack.message(second, SECOND)["text"]
    assert any("ひとりめです" in t for t in bot_thread(bridge, CHANNEL, first))
    assert any("ふたりめです" in t for t in bot_thread(bridge, SECOND, second))
    assert not any("ふたりめ" in t for t in bot_thread(bridge, CHANNEL, first))

    # A counsellor of the second channel answers in its thread: the second child hears it, the
    # first does not; the ✅ and the root's new state are in the second channel.
    reply = reply_in(bridge, SECOND, second, "ふたりめさん、きいてるよ")
    line.wait_for(lambda: line.texts_to(B) == ["ふたりめさん、きいてるよ"])
    slack.wait_for(lambda: "white_check_mark" in slack.reactions_on(reply, SECOND), message="the ✅ in the second")
    slack.wait_for(lambda: f"<@{ONLY_IN_SECOND}>" in latest_root(bridge, SECOND, second), message="root updated")
    assert slack.updates_of(first, CHANNEL) == []

    # The same ts in a channel outside the pool is no case's thread: nothing is sent.
    assert slack.add_message(OUTSIDE, "別の話", user=ONLY_IN_SECOND)["ts"] == second
    reply_in(bridge, OUTSIDE, second, "ここは別のチャンネル")
    # The shortcut on the second channel's thread holds its case (not the first channel's).
    assert shortcut(bridge, reply, second, user=ONLY_IN_SECOND, channel=SECOND).status_code == 200
    slack.wait_for(lambda: len(slack.views()) == 1)
    opened = slack.views()[0]
    assert json.loads(opened["view"]["private_metadata"]) == {"thread_ts": second, "channel": SECOND}
    assert submit(bridge, opened, user=ONLY_IN_SECOND, action="hold").status_code == 200
    slack.wait_for(lambda: any("自動終了を止めました" in t for t in bot_thread(bridge, SECOND, second)))

    # The root's close button, pressed in the second channel by someone only in that channel.
    pressed = {
        "type": "block_actions",
        "user": {"id": ONLY_IN_SECOND},
        "channel": {"id": SECOND},
        "trigger_id": f"trig-{time.time_ns()}",
        "actions": [{"action_id": "close_case", "value": "2", "type": "button", "action_ts": str(time.time())}],
    }
    assert interactive(bridge, pressed).status_code == 200
    line.wait_for(lambda: len(line.texts_to(B)) == 2)
    assert "終わりにします" in line.texts_to(B)[1]
    slack.wait_for(lambda: "が終了" in latest_root(bridge, SECOND, second), message="the second case closed")
    assert any("相談を終了しました" in t for t in bot_thread(bridge, SECOND, second))

    # /cases typed in the second channel is answered there; the first case is still open.
    assert slash_command(bridge, "/cases", "", user=ONLY_IN_SECOND, channel=SECOND).status_code == 200
    slack.wait_for(lambda: bool(slack.ephemerals(SECOND)), message="the answer in the second channel")
    (listed,) = [e["text"] for e in slack.ephemerals(SECOND) if e["thread_ts"] is None]
    assert "#1" in listed and "#2" not in listed
    bridge.wait_settled()
    assert line.texts_to(A) == []  # nothing of the second case reached the first child
    assert not any("ここは別" in t for t in [*line.texts_to(A), *line.texts_to(B)])
    assert slack.messages(OUTSIDE) == [m for m in slack.messages(OUTSIDE) if not m.get("bot_id")]


def test_the_fake_gives_the_same_ts_in_every_channel_when_asked(fake_slack: FakeSlack) -> None:
    fake_slack.same_ts_in_every_channel(1_800_000_000.0)
    one = fake_slack.add_message("C1", "a", user="U1")
    two = fake_slack.add_message("C2", "b", user="U1")
    assert one["ts"] == two["ts"] == "1800000000.000001"
    assert fake_slack.message(one["ts"], "C2")["text"] == "b"
    reply = fake_slack.add_message("C2", "c", user="U1", thread_ts=two["ts"])
    assert fake_slack.thread("C2", two["ts"]) == [fake_slack.message(reply["ts"], "C2")]
    assert fake_slack.thread("C1", one["ts"]) == []
    with pytest.raises(KeyError, match="several channels"):
        fake_slack.message(one["ts"])
