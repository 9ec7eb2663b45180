"""Case controls and the safety net end to end: signed slash commands, block_actions,
message shortcuts and view submissions through the web process, decided by the worker,
asserted on what fake LINE and fake Slack received (and on Redis, for "nothing changed")."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.fakes.harness import ALWAYS_OPEN, write_policy
from bridge.fakes.server import time_scale
from bridge.fakes.slack import FakeSlack
from tests.conftest import (
    CHANNEL,
    Bridge,
    everything_in_redis,
    interactive,
    line_follow_event,
    line_text_event,
    line_user_id,
    press,
    run_cli,
    slash_command,
)
from tests.test_hours_e2e import fire_now, timers
from tests.test_relay_e2e import bot_thread, recorded, roots, wait_thread

pytestmark = [pytest.mark.redis, pytest.mark.each_redis]

A = line_user_id(0x51)
B = line_user_id(0x52)
SUPERVISORS = "CSUPER"
SUPERVISOR = "USUPER1"  # a supervisor by ID in the policy
GROUP_SUPERVISOR = "UCOUNSEL2"  # a supervisor by membership of the user group
COUNSELLOR = "UCOUNSEL1"


def policy(tmp_path: Path, name: str = "controls.toml", **settings: Mapping[str, object]) -> str:
    roles: dict[str, object] = {"supervisors": [SUPERVISOR], "supervisor_group": "SSUPERS"}
    path = write_policy(tmp_path, hours=ALWAYS_OPEN, name=name, settings={"roles": roles, **settings})
    return str(path)


@pytest.fixture
def controlled(bridge_factory: Any, fake_slack: FakeSlack, tmp_path: Path) -> Bridge:
    """A bridge whose policy names a supervisor by ID and a supervisors' user group."""
    fake_slack.set_usergroup("SSUPERS", [GROUP_SUPERVISOR])
    made: Bridge = bridge_factory(BRIDGE_CONFIG=policy(tmp_path))
    return made


def shortcut(bridge: Bridge, message_ts: str, thread_ts: str, *, user: str = COUNSELLOR, channel: str = CHANNEL) -> Any:
    """Use the message shortcut on a message of a thread (message_action)."""
    return interactive(
        bridge,
        {
            "type": "message_action",
            "callback_id": "case_actions",
            "user": {"id": user},
            "team": {"id": "T0001"},
            "channel": {"id": channel},
            "trigger_id": f"trig-{time.time_ns()}",
            "message_ts": message_ts,
            "message": {"type": "message", "ts": message_ts, "thread_ts": thread_ts, "text": "..."},
            "response_url": "https://hooks.slack.invalid/x",
        },
    )


def submit(bridge: Bridge, opened: dict[str, Any], *, user: str, action: str | None = None, reason: str = "") -> Any:
    """Submit a window the bridge opened, as Slack sends it (view_submission)."""
    values: dict[str, Any] = {"reason": {"reason": {"type": "plain_text_input", "value": reason or None}}}
    if action is not None:
        values["action"] = {"action": {"type": "static_select", "selected_option": {"value": action}}}
    view = {**opened["view"], "id": opened["id"], "state": {"values": values}}
    return interactive(bridge, {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0001"}, "view": view})


def ephemerals_to(bridge: Bridge, user: str) -> list[str]:
    """What one person was told privately: ephemeral lines, or direct messages when they are
    not in the case channel (Slack refuses ephemerals to non-members)."""
    private = [e["text"] for e in bridge.fake_slack.ephemerals() if e.get("user") == user]
    return private + [m["text"] for m in bridge.fake_slack.messages(user)]


def wait_ephemeral(bridge: Bridge, user: str, fragment: str) -> None:
    bridge.fake_slack.wait_for(lambda: any(fragment in t for t in ephemerals_to(bridge, user)), message=fragment)


def latest_root(bridge: Bridge, root_ts: str) -> dict[str, Any]:
    updates = bridge.fake_slack.updates_of(root_ts)
    return updates[-1] if updates else bridge.fake_slack.message(root_ts)


def buttons_of(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


def case_state(bridge: Bridge) -> dict[bytes, Any]:
    """Everything the bridge keeps about cases (for "nothing changed" checks)."""
    return {k: bridge.redis.dump(k) for k in sorted(bridge.redis.scan_iter(bridge.keys.cases_prefix + "*"))}


def audit(bridge: Bridge, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"REDIS_URL": bridge.env["REDIS_URL"], "BRIDGE_CONFIG": bridge.env["BRIDGE_CONFIG"]}
    return run_cli("audit", *args, env=env)


# --- close -----------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["command", "button", "shortcut"])
def test_close_ends_the_consultation_every_way(controlled: Bridge, via: str) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "きいてほしい"))
    root_ts, _ = wait_thread(bridge, 1)
    reply_ts = bridge.counsellor_reply(root_ts, "きいてるよ")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(A) == ["きいてるよ"])
    if via == "command":
        assert slash_command(bridge, "/close", "#1 学校と連携予定").status_code == 200
    elif via == "button":
        assert press(bridge, "close_case", 1).status_code == 200
    else:
        assert shortcut(bridge, reply_ts, root_ts).status_code == 200
        bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
        opened = bridge.fake_slack.views()[0]
        assert opened["view"]["callback_id"] == "case_control"
        assert submit(bridge, opened, user=COUNSELLOR, action="close", reason="学校と連携予定").status_code == 200
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(A)) == 2)
    assert "終わりにします" in bridge.fake_line.texts_to(A)[1]
    bridge.fake_slack.wait_for(lambda: "が終了" in latest_root(bridge, root_ts)["text"])
    root = latest_root(bridge, root_ts)
    assert f"<@{COUNSELLOR}> が終了" in root["text"] and "close_case" not in buttons_of(root)
    note = next(t for t in bot_thread(bridge, root_ts) if "相談を終了しました" in t)
    assert f"<@{COUNSELLOR}>" in note and (via == "button" or "学校と連携予定" in note)
    # A later reply in the thread is not sent; its author is told why.
    bridge.counsellor_reply(root_ts, "あとひとこと")
    wait_ephemeral(bridge, COUNSELLOR, "送信されていません")
    assert len(bridge.fake_line.texts_to(A)) == 2
    # The child's next message opens a new case.
    bridge.line_events(line_text_event(A, "またきたよ"))
    wait_thread(bridge, 1, root_index=1)
    assert "#2" in roots(bridge)[1]["text"]
    printed = audit(bridge, "--case", "1")
    assert printed.returncode == 0, printed.stderr
    assert "close" in printed.stdout and COUNSELLOR in printed.stdout and via in printed.stdout


def test_closing_twice_answers_and_changes_nothing(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    slash_command(bridge, "/close", "1")
    wait_ephemeral(bridge, COUNSELLOR, "#1 を終了しました")
    before = case_state(bridge)
    slash_command(bridge, "/close", "1")
    wait_ephemeral(bridge, COUNSELLOR, "すでに終了")
    assert case_state(bridge) == before and len(bridge.fake_line.texts_to(A)) == 1


# --- refusals and usage ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text", "user", "expected"),
    [
        ("/close", "1", "UOUTSIDER", "メンバーだけ"),
        ("/escalate", "1 心配", "UOUTSIDER", "メンバーだけ"),
        ("/cases", "", "UOUTSIDER", "メンバーだけ"),
        ("/block", "1 迷惑", COUNSELLOR, "スーパーバイザーだけ"),
        ("/unblock", "1", COUNSELLOR, "スーパーバイザーだけ"),
        ("/block", "1", SUPERVISOR, "理由は必須"),
        ("/escalate", "1", COUNSELLOR, "理由は必須"),
        ("/close", "いちばん", COUNSELLOR, "使い方: /close"),
        ("/close", "99", COUNSELLOR, "#99 は見つかりません"),
    ],
)
def test_refusals_and_usage_lines_change_nothing(
    controlled: Bridge, command: str, text: str, user: str, expected: str
) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    bridge.fake_slack.wait_for(lambda: bridge.redis.hget(bridge.keys.case(1), "thread_ts") is not None)
    bridge.wait_settled()  # the root's own deliveries settle
    before = case_state(bridge)
    posted = len(bridge.fake_slack.messages(CHANNEL))
    response = slash_command(bridge, command, text, user=user)
    assert response.status_code == 200 and response.text == ""  # acknowledged; the answer comes ephemerally
    wait_ephemeral(bridge, user, expected)
    bridge.wait_settled()
    after = case_state(bridge)
    refused_by_role = expected in ("メンバーだけ", "スーパーバイザーだけ")
    assert {k: v for k, v in after.items() if b"audit" not in k} == {
        k: v for k, v in before.items() if b"audit" not in k
    }
    assert len(bridge.fake_slack.messages(CHANNEL)) == posted
    assert bridge.fake_line.texts_to(A) == [] and bridge.fake_line.reply_texts() == []
    if refused_by_role:  # a refusal for membership or role is on the record
        printed = audit(bridge)
        assert f"refused:{command[1:]}" in printed.stdout and user in printed.stdout


def test_a_button_pressed_by_someone_outside_the_channel_is_refused(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    root_ts, _ = wait_thread(bridge, 1)
    press(bridge, "close_case", 1, user="UOUTSIDER")
    wait_ephemeral(bridge, "UOUTSIDER", "メンバーだけ")
    (refusal,) = bridge.fake_slack.messages("UOUTSIDER")  # not in the channel: told directly
    assert "メンバーだけ" in refusal["text"] and bridge.fake_slack.ephemerals() == []
    assert bridge.redis.hget(bridge.keys.case(1), "status") == b"open"
    # A member's button answer shows in the thread the button belongs to.
    slash_command(bridge, "/hold", "1")
    wait_ephemeral(bridge, COUNSELLOR, "自動終了を止めました")
    press(bridge, "hold_case", 1)
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.ephemerals()) == 2)
    assert bridge.fake_slack.ephemerals()[1]["thread_ts"] == root_ts


def test_someone_who_left_the_channel_can_no_longer_use_the_controls(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    bridge.slack_event({"type": "member_left_channel", "user": COUNSELLOR, "channel": CHANNEL, "channel_type": "G"})
    bridge.fake_slack.wait_for(
        lambda: not bridge.redis.sismember(bridge.keys.roster_members, COUNSELLOR), message="roster change"
    )
    slash_command(bridge, "/close", "1")
    wait_ephemeral(bridge, COUNSELLOR, "メンバーだけ")
    assert bridge.redis.hget(bridge.keys.case(1), "status") == b"open"
    bridge.slack_event({"type": "member_joined_channel", "user": COUNSELLOR, "channel": CHANNEL, "channel_type": "G"})
    bridge.fake_slack.wait_for(lambda: bool(bridge.redis.sismember(bridge.keys.roster_members, COUNSELLOR)))
    slash_command(bridge, "/close", "1")
    wait_ephemeral(bridge, COUNSELLOR, "#1 を終了しました")


def test_controls_outside_the_case_channel_record_nothing(controlled: Bridge) -> None:
    bridge = controlled
    bridge.wait_settled()
    before = bridge.redis.xlen(bridge.keys.inbound), recorded(bridge)
    response = slash_command(bridge, "/cases", "", channel="CELSEWHERE")
    assert response.status_code == 200 and "/cases は相談用のチャンネル" in response.text
    bridge.wait_settled()
    assert (bridge.redis.xlen(bridge.keys.inbound), recorded(bridge)) == before
    assert bridge.fake_slack.ephemerals() == []


# --- block and unblock -------------------------------------------------------------------


@pytest.mark.parametrize("way", ["command by ID", "button by group", "shortcut by ID"])
def test_a_supervisor_blocks_and_unblocks_a_child(controlled: Bridge, way: str) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "あそぼ"))
    root_ts, _ = wait_thread(bridge, 1)
    child_ts = bridge.fake_slack.thread(CHANNEL, root_ts)[0]["ts"]
    if way == "command by ID":
        blocker = SUPERVISOR
        slash_command(bridge, "/block", "1 無関係な投稿の連続", user=blocker)
    elif way == "shortcut by ID":
        blocker = SUPERVISOR
        shortcut(bridge, child_ts, root_ts, user=blocker)  # on the child's message in the thread
        bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
        submit(bridge, bridge.fake_slack.views()[0], user=blocker, action="block", reason="無関係な投稿の連続")
    else:
        blocker = GROUP_SUPERVISOR  # a member of the supervisors' user group
        press(bridge, "block_case", 1, user=blocker)
        bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
        opened = bridge.fake_slack.views()[0]
        reason_block = opened["view"]["blocks"][-1]
        assert reason_block["block_id"] == "reason" and reason_block["optional"] is False
        submit(bridge, opened, user=blocker, reason="無関係な投稿の連続")
    bridge.fake_slack.wait_for(lambda: any("ブロックしました" in t for t in bot_thread(bridge, root_ts)))
    note = next(t for t in bot_thread(bridge, root_ts) if "ブロックしました" in t)
    assert f"<@{blocker}>" in note and "無関係な投稿の連続" in note
    # The blocked child's messages are counted on the case: not relayed, not answered, not kept.
    thread_before = bot_thread(bridge, root_ts)
    for text in ("おーい", "むしするな", "まだ？"):
        bridge.line_events(line_text_event(A, text))
    bridge.fake_slack.wait_for(lambda: "受信 3 件" in latest_root(bridge, root_ts)["text"])
    assert bot_thread(bridge, root_ts) == thread_before and len(roots(bridge)) == 1
    assert bridge.fake_line.texts_to(A) == [] and bridge.fake_line.reply_texts() == []
    stored = everything_in_redis(bridge.redis)
    assert "むしするな".encode() not in stored and "あそぼ".encode() not in stored  # words gone once routed
    assert "unblock_case" in buttons_of(latest_root(bridge, root_ts))
    # Unblocked, the child's next message opens a new case.
    if way == "command by ID":
        slash_command(bridge, "/unblock", "1", user=blocker)
    elif way == "shortcut by ID":
        shortcut(bridge, child_ts, root_ts, user=blocker)
        bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 2)
        submit(bridge, bridge.fake_slack.views()[1], user=blocker, action="unblock")
    else:
        press(bridge, "unblock_case", 1, user=blocker)
    bridge.fake_slack.wait_for(lambda: any("ブロックを解除" in t for t in bot_thread(bridge, root_ts)))
    bridge.line_events(line_text_event(A, "ごめんなさい"))
    _, texts = wait_thread(bridge, 1, root_index=1)
    assert texts == ["ごめんなさい"]
    printed = audit(bridge, "--case", "1").stdout
    assert "block" in printed and "unblock" in printed and "無関係な投稿の連続" in printed


def test_a_blocked_child_gets_no_welcome_either(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "あそぼ"))
    wait_thread(bridge, 1)
    slash_command(bridge, "/block", "1 迷惑行為", user=SUPERVISOR)
    wait_ephemeral(bridge, SUPERVISOR, "ブロックしました")
    followed = recorded(bridge)
    response = bridge.line_events(line_follow_event(A, event_id="01JFOLLOWBLOCKED000000000", reply_token="rt-follow"))
    assert response.status_code == 200 and recorded(bridge) != followed  # the follow was recorded
    bridge.wait_settled()  # and decided, and whatever it led to was sent
    assert bridge.fake_line.texts_to(A) == [] and bridge.fake_line.reply_texts() == []


# --- escalate ------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["command", "button"])
def test_escalation_reaches_the_supervisors_in_seconds(controlled: Bridge, via: str) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "ちょっと話を聞いてほしい"))
    root_ts, _ = wait_thread(bridge, 1)
    started = time.monotonic()
    if via == "command":
        slash_command(bridge, "/escalate", "1 帰宅を拒んでいる")
    else:
        press(bridge, "escalate_case", 1)
        bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
        submit(bridge, bridge.fake_slack.views()[0], user=COUNSELLOR, reason="帰宅を拒んでいる")
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(SUPERVISORS)) == 1)
    took = time.monotonic() - started
    alert = bridge.fake_slack.roots(SUPERVISORS)[0]["text"]
    for part in ("<!subteam^SSUPERS>", "#1", "帰宅を拒んでいる", f"<@{COUNSELLOR}>", f"/archives/{CHANNEL}/p"):
        assert part in alert
    assert "ちょっと話を聞いてほしい" not in alert  # the child's words stay in the thread
    bridge.fake_slack.wait_for(lambda: "緊急" in latest_root(bridge, root_ts)["text"])
    thread = bot_thread(bridge, root_ts)
    checklist = next(t for t in thread if "緊急時の確認" in t)
    assert all(number in checklist for number in ("110", "119", "189", "0120-967-866"))
    assert bridge.fake_line.texts_to(A) == [] and bridge.fake_line.reply_texts() == []  # the child is told nothing
    print(f"escalation to supervisors' channel: {took * 1000:.0f} ms")


# --- /cases ------------------------------------------------------------------------------


def test_cases_lists_the_open_cases(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "ひとりめ"))
    root_ts, _ = wait_thread(bridge, 1)
    bridge.line_events(line_text_event(B, "ふたりめ"))
    wait_thread(bridge, 1, root_index=1)
    bridge.counsellor_reply(root_ts, "こんにちは")
    bridge.fake_slack.wait_for(lambda: "対応中" in latest_root(bridge, root_ts)["text"])
    slash_command(bridge, "/cases", "", user=GROUP_SUPERVISOR)
    wait_ephemeral(bridge, GROUP_SUPERVISOR, "開いている相談: 2 件")
    listing = next(t for t in ephemerals_to(bridge, GROUP_SUPERVISOR) if "2 件" in t).splitlines()
    assert listing[1].startswith("• #1") and f"<@{COUNSELLOR}>" in listing[1]
    assert listing[2].startswith("• #2") and "担当: なし" in listing[2]
    assert A not in "\n".join(listing) and "ひとりめ" not in "\n".join(listing)


# --- the safety net -------------------------------------------------------------------------


def test_risk_words_mark_the_case_urgent_and_alert_the_supervisors(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "もう ｼﾆﾀｲ"))
    root_ts, _ = wait_thread(bridge, 1)
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(SUPERVISORS)) == 1)
    alert = bridge.fake_slack.roots(SUPERVISORS)[0]["text"]
    assert "自動検知" in alert and "#1" in alert and "ｼﾆﾀｲ" not in alert
    bridge.fake_slack.wait_for(lambda: any("緊急時の確認" in t for t in bot_thread(bridge, root_ts)))
    assert bot_thread(bridge, root_ts)[0] == "もう ｼﾆﾀｲ"  # the child's words are relayed as always
    # One alert per case: a second risky message does not alert again.
    bridge.line_events(line_text_event(A, "きえたい"))
    wait_thread(bridge, 4)
    bridge.wait_settled()
    assert len(bridge.fake_slack.roots(SUPERVISORS)) == 1
    assert "risk" in audit(bridge, "--case", "1").stdout


def test_out_of_hours_a_risky_message_gets_the_crisis_lines(bridge_factory: Any, tmp_path: Path) -> None:
    closed = write_policy(tmp_path, hours={"monday": []}, name="closed.toml")  # never open
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(closed))
    bridge.line_events(line_text_event(A, "死にたい", reply_token="rt-risky"))
    bridge.line_events(line_text_event(B, "ねむれない", reply_token="rt-plain"))
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.accepted_replies()) == 2)
    answers = {r["reply_token"]: [m["text"] for m in r["messages"]] for r in bridge.fake_line.accepted_replies()}
    first, crisis = answers["rt-risky"]
    assert "お休み" in first and "0120-0-78310" in crisis and "189" in crisis
    assert len(answers["rt-plain"]) == 1 and "0120-0-78310" not in answers["rt-plain"][0]


def test_a_sticker_flood_is_deferred_flagged_and_released(
    bridge_factory: Any, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    # A controlled clock: the cool-down is long and brought forward once the flood has been
    # looked at, so a slow machine cannot see it end before the test looks.
    floods = {"max_stickers": 2, "max_messages": 4, "window_seconds": 60, "cooldown_seconds": 600}
    fake_slack.set_usergroup("SSUPERS", [GROUP_SUPERVISOR])
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=policy(tmp_path, floods=floods))
    sent_at = time.time()
    stickers = []
    for i in range(5):
        event = line_text_event(A, "x")
        event["message"] = {"id": str(i), "type": "sticker", "packageId": "1", "stickerId": "1", "keywords": ["OK"]}
        stickers.append(event)
    bridge.line_events(*stickers)
    bridge.line_events(line_text_event(A, "ごめん、きいて"))  # deferred too: the cool-down covers every message
    root_ts, _ = wait_thread(bridge, 3)  # two stickers, then the note
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(SUPERVISORS)) == 1)
    assert "連続投稿" in bridge.fake_slack.roots(SUPERVISORS)[0]["text"]
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.reply_texts()) == 1)
    assert "しばらくの間" in bridge.fake_line.reply_texts()[0]  # one notice to the child
    thread = bot_thread(bridge, root_ts)
    assert thread[:2] == ["[スタンプ: OK]", "[スタンプ: OK]"] and "保留します" in thread[2]
    assert "ごめん、きいて" not in thread
    bridge.wait_settled()
    assert "ごめん、きいて" not in bot_thread(bridge, root_ts)  # deferred, not merely not posted yet
    (until,) = timers(bridge, "flood-release").values()
    assert sent_at + 600 <= until + 0.001 and until <= time.time() + 600  # the cool-down from the flood's start
    # After the cool-down, what was deferred reaches the thread: nothing is lost.
    fire_now(bridge, "flood-release")
    bridge.fake_slack.wait_for(lambda: any("保留を解除" in t for t in bot_thread(bridge, root_ts)), timeout=15)
    bridge.fake_slack.wait_for(lambda: "保留中" not in latest_root(bridge, root_ts)["text"])
    assert any("保留中" in update["text"] for update in bridge.fake_slack.updates_of(root_ts))  # shown meanwhile
    bridge.wait_settled()
    thread = bot_thread(bridge, root_ts)
    released = next(t for t in thread if "保留を解除" in t)
    assert "4 件" in released and "スタンプ 3 件" in released
    assert thread[-1] == "ごめん、きいて"
    assert len(bridge.fake_line.reply_texts()) == 1 and bridge.fake_line.texts_to(A) == []
    assert bridge.redis.hget(bridge.keys.case(1), "status") == b"open"
    assert "flood" in audit(bridge, "--case", "1").stdout


def test_audit_command_rejects_bad_input(controlled: Bridge) -> None:
    for args, fragment in ((["--case", "abc"], "not a case number"), (["--since", "yesterday"], "not a date")):
        printed = audit(controlled, *args)
        assert printed.returncode == 2 and fragment in printed.stderr
    future = audit(controlled, "--since", "2099-01-01")
    assert future.returncode == 0 and future.stdout == ""


def test_a_window_submitted_without_a_reason_stays_open_and_records_nothing(controlled: Bridge) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    press(bridge, "escalate_case", 1)
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
    bridge.wait_settled()
    before = bridge.redis.xlen(bridge.keys.inbound), recorded(bridge), case_state(bridge)
    response = submit(bridge, bridge.fake_slack.views()[0], user=COUNSELLOR, reason="")
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "ブロックと緊急連絡には理由が必要です。"},
    }
    bridge.wait_settled()
    assert (bridge.redis.xlen(bridge.keys.inbound), recorded(bridge), case_state(bridge)) == before
    assert bridge.fake_slack.roots(SUPERVISORS) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": {"id": COUNSELLOR}, "actions": "close_case"},
        {"type": "block_actions", "user": "x", "actions": [{"action_id": "close_case", "value": ["1"]}]},
        {"type": "message_action", "callback_id": "case_actions", "message": "not an object"},
        {"type": "view_submission", "user": {"id": COUNSELLOR}, "view": {"callback_id": "case_control", "state": []}},
        {"type": "view_submission", "view": {"callback_id": "case_control", "private_metadata": "{not json"}},
    ],
)
def test_malformed_interactions_change_nothing_and_crash_nothing(controlled: Bridge, payload: dict[str, Any]) -> None:
    bridge = controlled
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    bridge.wait_settled()
    before = case_state(bridge)
    response = interactive(bridge, payload)
    assert response.status_code in (200, 400, 404), response.text
    bridge.wait_settled()
    assert {k: v for k, v in case_state(bridge).items() if b"audit" not in k} == {
        k: v for k, v in before.items() if b"audit" not in k
    }
    assert httpx.get(bridge.url + "/healthz", timeout=10 * time_scale()).status_code == 200
    assert all(p.popen.poll() is None for p in bridge.processes)  # every process still runs


def test_the_shortcut_and_buttons_act_only_in_the_case_channel(controlled: Bridge) -> None:
    """Used on a message of another channel, the shortcut opens a window that only says where
    it works (nothing to submit), and a button payload from another channel records nothing."""
    bridge = controlled
    bridge.line_events(line_text_event(A, "はじめまして"))
    root_ts, _ = wait_thread(bridge, 1)
    assert shortcut(bridge, root_ts, root_ts, channel="COTHER").status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.views()) == 1)
    (opened,) = bridge.fake_slack.views()
    assert "submit" not in opened["view"] and "callback_id" not in opened["view"]
    assert "相談用のチャンネル" in json.dumps(opened["view"], ensure_ascii=False)
    payload = {
        "type": "block_actions",
        "user": {"id": COUNSELLOR},
        "team": {"id": "T0001"},
        "channel": {"id": "COTHER"},
        "trigger_id": f"trig-{time.time_ns()}",
        "actions": [{"action_id": "hold_case", "value": "1", "type": "button", "action_ts": str(time.time())}],
    }
    assert interactive(bridge, payload).status_code == 200
    bridge.wait_settled()
    assert not bridge.fake_slack.ephemerals()  # no control was decided, so nobody was answered
    assert "hold" not in audit(bridge, "--case", "1").stdout
