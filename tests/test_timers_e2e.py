"""Counsellor-facing deadlines end to end: unanswered cases, the one-hour guideline, history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bridge.fakes.harness import ALWAYS_OPEN, write_policy
from tests.conftest import CHANNEL, Bridge, line_text_event, line_user_id, press, slash_command
from tests.test_hours_e2e import fire_all, timers
from tests.test_relay_e2e import bot_thread, recorded, roots, wait_thread

pytestmark = pytest.mark.redis

A = line_user_id(0x41)
B = line_user_id(0x42)
SUPERVISORS = "CSUPER"


def test_an_unanswered_case_is_pointed_out_and_an_answered_one_is_not(bridge_factory: Any, tmp_path: Path) -> None:
    # A controlled clock: the deadlines are brought forward once case #2 is answered, so how
    # fast that answer is decided cannot decide the outcome.
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts={"unanswered_alert_seconds": 600})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "だれか"))
    a_root, _ = wait_thread(bridge, 1)
    bridge.line_events(line_text_event(B, "きいて"))
    b_root, _ = wait_thread(bridge, 1, root_index=1)
    reply_ts = bridge.counsellor_reply(b_root, "きいてるよ")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    bridge.wait_settled()
    opened = [float(bridge.redis.hget(f"br:{{cases}}:case:{n}", "opened_at") or 0) for n in (1, 2)]
    assert sorted(timers(bridge, "unanswered").values()) == pytest.approx([at + 600 for at in opened], abs=0.01)
    assert len(roots(bridge)) == 2  # nothing before the deadline
    assert len(fire_all(bridge, "unanswered")) == 2
    bridge.fake_slack.wait_for(lambda: len(roots(bridge)) == 3)
    alert = roots(bridge)[2]["text"]
    assert "<!here>" in alert and "#1" in alert
    assert f"https://slack.com/archives/{CHANNEL}/p{a_root.replace('.', '')}" in alert
    bridge.wait_settled()
    assert not timers(bridge, "unanswered")  # both deadlines were decided
    assert len(roots(bridge)) == 3  # nothing about case #2, which was answered
    assert A not in alert


def test_the_one_hour_guideline_is_kept_without_telling_the_child(bridge_factory: Any, tmp_path: Path) -> None:
    timeouts = {"soft_limit_warning_seconds": 1, "soft_limit_seconds": 2, "overtime_alert_seconds": 3}
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts=timeouts)
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "ながい話"))
    root_ts, _ = wait_thread(bridge, 1)
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(SUPERVISORS)) == 1)
    bridge.wait_settled()  # the thread's notes go by another lane than the supervisors' alert
    assert not timers(bridge, "overtime") and len(bridge.fake_slack.roots(SUPERVISORS)) == 1
    notes = bot_thread(bridge, root_ts)[1:]
    assert len(notes) == 2 and "たちました" in notes[0] and "目安の時間" in notes[1]
    overtime = bridge.fake_slack.roots(SUPERVISORS)[0]["text"]
    assert "#1" in overtime and root_ts.replace(".", "") in overtime
    assert bridge.fake_line.requests_to("/v2/bot/message/push") == []  # the child is never told


def test_a_childs_next_case_lists_the_earlier_numbers(bridge: Bridge) -> None:
    bridge.line_events(line_text_event(A, "一回目"))
    wait_thread(bridge, 1)
    bridge.line_events(
        {
            "type": "unfollow",
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": A},
            "webhookEventId": "01UNFOLLOWTIMERS0000000001",
            "deliveryContext": {"isRedelivery": False},
        }
    )
    wait_thread(bridge, 2)
    bridge.line_events(line_text_event(A, "二回目"))
    wait_thread(bridge, 1, root_index=1)
    second = roots(bridge)[1]["text"]
    assert "#2" in second and "以前の相談: #1" in second
    assert "以前の相談" not in roots(bridge)[0]["text"]


def test_silence_after_a_counsellor_checks_in_then_closes(bridge_factory: Any, tmp_path: Path) -> None:
    timeouts = {"idle_warning_seconds": 1, "idle_close_seconds": 2}
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts=timeouts)))
    bridge.line_events(line_text_event(A, "こんにちは"))
    root_ts, _ = wait_thread(bridge, 1)
    bridge.counsellor_reply(root_ts, "どうしたの？")
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(A)) == 3)
    reply, checkin, closing = bridge.fake_line.texts_to(A)
    assert reply == "どうしたの？" and "返事" in checkin and "0120-967-866" in closing
    bridge.fake_slack.wait_for(lambda: any("返信なし" in u["text"] for u in bridge.fake_slack.updates_of(root_ts)))
    bridge.wait_settled()
    assert len(bridge.fake_line.texts_to(A)) == 3  # one check-in, one close
    assert "返信がなかったため" in bot_thread(bridge, root_ts)[-1]
    # Writing again opens a new case, which points to the old one.
    bridge.line_events(line_text_event(A, "さっきはごめん"))
    wait_thread(bridge, 1, root_index=1)
    assert "以前の相談: #1" in roots(bridge)[1]["text"]


def silence_deadlines_pass(bridge: Bridge) -> None:
    """A controlled clock: both silence deadlines of the counsellor's message come due now (they
    were armed, far away), and the bridge decides them."""
    armed = {**timers(bridge, "idle-warning"), **timers(bridge, "idle-close")}
    assert len(armed) == 2, armed
    assert fire_all(bridge, "idle-warning") and fire_all(bridge, "idle-close")
    # Each timer has left the set once the router moved it into the stream; then it is decided.
    bridge.fake_slack.wait_for(lambda: all(bridge.redis.zscore(bridge.keys.timers, member) is None for member in armed))
    bridge.wait_settled()


def test_a_childs_reply_stops_the_silence_clock(bridge_factory: Any, tmp_path: Path) -> None:
    timeouts = {"idle_warning_seconds": 480, "idle_close_seconds": 600}
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts=timeouts)))
    bridge.line_events(line_text_event(A, "こんにちは"))
    root_ts, _ = wait_thread(bridge, 1)
    reply_ts = bridge.counsellor_reply(root_ts, "どうしたの？")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    bridge.line_events(line_text_event(A, "ちょっと待って"))
    wait_thread(bridge, 2)
    bridge.wait_settled()
    silence_deadlines_pass(bridge)  # however long the child's answer took to be decided
    assert bridge.fake_line.texts_to(A) == ["どうしたの？"]  # no check-in, no close
    assert len(roots(bridge)) == 1


@pytest.mark.parametrize("via", ["command", "button"])
def test_a_counsellor_can_stop_the_automatic_close(bridge_factory: Any, tmp_path: Path, via: str) -> None:
    timeouts = {"idle_warning_seconds": 480, "idle_close_seconds": 600}
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts=timeouts)))
    bridge.line_events(line_text_event(A, "ちょっと出かけるね、すぐ戻る"))
    root_ts, _ = wait_thread(bridge, 1)
    assert any(b.get("type") == "actions" for b in bridge.fake_slack.message(root_ts)["blocks"])
    bridge.counsellor_reply(root_ts, "わかった、待ってるね")
    response = slash_command(bridge, "/hold", "#1") if via == "command" else press(bridge, "hold_case", 1)
    assert response.status_code == 200, response.text
    bridge.fake_slack.wait_for(lambda: any("自動終了を止めました" in t for t in bot_thread(bridge, root_ts)))
    bridge.wait_settled()
    silence_deadlines_pass(bridge)  # however long the hold took to be decided
    assert bridge.fake_line.texts_to(A) == ["わかった、待ってるね"]  # no check-in, no close
    latest = bridge.fake_slack.updates_of(root_ts)[-1]
    assert "自動終了停止中" in latest["text"] and "返信なし" not in latest["text"]
    buttons = [e["action_id"] for b in latest.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]
    assert "hold_case" not in buttons and "close_case" in buttons  # the hold button is gone, the rest stay
    if via == "command":
        bridge.fake_slack.wait_for(lambda: any("#1" in e["text"] for e in bridge.fake_slack.ephemerals()))


def test_a_bad_hold_command_gets_a_usage_line_and_changes_nothing(bridge: Bridge) -> None:
    before = {k: bridge.redis.dump(k) for k in bridge.redis.scan_iter(b"br:{cases}:*")}
    assert slash_command(bridge, "/hold", "そのケース").status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.ephemerals()) == 1)
    assert "使い方" in bridge.fake_slack.ephemerals()[0]["text"]
    assert {k: bridge.redis.dump(k) for k in bridge.redis.scan_iter(b"br:{cases}:*")} == before


def test_a_silence_deadline_missed_by_stopped_workers_closes_once(bridge_factory: Any, tmp_path: Path) -> None:
    timeouts = {"idle_warning_seconds": 0, "idle_close_seconds": 600}
    bridge: Bridge = bridge_factory(
        BRIDGE_CONFIG=str(write_policy(tmp_path, hours=ALWAYS_OPEN, timeouts=timeouts)), worker=2
    )
    bridge.line_events(line_text_event(A, "こんにちは"))
    root_ts, _ = wait_thread(bridge, 1)
    reply_ts = bridge.counsellor_reply(root_ts, "どうしたの？")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    bridge.wait_settled()
    for process in [p for p in bridge.processes if p.name == "worker"]:
        process.stop()
    # The close deadline passes while no worker runs: a controlled clock moves it into the past
    # only once both are stopped, however long stopping them took.
    (member,) = timers(bridge, "idle-close")
    bridge.redis.zadd(bridge.keys.timers, {member: int((time.time() - 1) * 1000)}, xx=True)
    assert bridge.fake_line.texts_to(A) == ["どうしたの？"]
    restarted = [bridge.launch("worker"), bridge.launch("worker")]  # two race for the same deadline
    for process in restarted:
        bridge.ready(process)
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(A)) == 2)
    bridge.wait_settled()
    assert not timers(bridge, "idle-close")
    assert len(bridge.fake_line.texts_to(A)) == 2  # the reply and one closing text (the check-in is off)
    assert sum("返信がなかったため" in t for t in bot_thread(bridge, root_ts)) == 1


def test_hold_outside_the_case_channel_is_refused_and_changes_nothing(bridge: Bridge) -> None:
    bridge.line_events(line_text_event(A, "こんにちは"))
    wait_thread(bridge, 1)
    bridge.wait_settled()
    before = bridge.redis.xlen("br:{in}:events"), recorded(bridge), bridge.redis.hget("br:{cases}:case:1", "hold")
    response = slash_command(bridge, "/hold", "1", channel="CELSEWHERE")
    assert response.status_code == 200 and "相談用のチャンネル" in response.text
    bridge.wait_settled()
    after = bridge.redis.xlen("br:{in}:events"), recorded(bridge), bridge.redis.hget("br:{cases}:case:1", "hold")
    assert after == before
