"""Opening hours end to end: policies that are closed now and open now, through the fakes."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from bridge.adapters.redis.inbound import FIRED_MARKER_TTL_SECONDS
from bridge.core.schedule.days import WEEKDAYS
from bridge.fakes.harness import ALWAYS_OPEN, write_policy
from bridge.fakes.server import time_scale
from tests.conftest import Bridge, line_text_event, line_user_id
from tests.test_relay_e2e import bot_thread, roots, wait_thread

pytestmark = [pytest.mark.redis, pytest.mark.each_redis]

TOKYO = ZoneInfo("Asia/Tokyo")
A = line_user_id(0x31)
B = line_user_id(0x32)
PUSH = "/v2/bot/message/push"


def closed_now(tmp: Path, **capacity: int) -> Path:
    """Open only on the day after tomorrow, 13:00-14:00 (Tokyo): closed whenever the test runs."""
    later = datetime.now(TOKYO) + timedelta(days=2)
    hours: dict[str, list[str]] = {day: [] for day in WEEKDAYS} | {WEEKDAYS[later.weekday()]: ["13:00-14:00"]}
    return write_policy(tmp, hours=hours, capacity=capacity, name="closed.toml")


def timers(bridge: Bridge, kind: str) -> dict[str, float]:
    """The armed timers of one kind: member -> deadline (seconds since the epoch)."""
    armed = cast(list[tuple[bytes, float]], bridge.redis.zrange(bridge.keys.timers, 0, -1, withscores=True))
    return {m.decode(): score / 1000 for m, score in armed if m.decode().startswith(kind + "|")}


def fire_now(bridge: Bridge, kind: str) -> str:
    """Bring a scheduled timer's deadline forward to now, as if its time had come: a controlled
    clock for the bridge's processes, so a test need not wait for (or race against) real time."""
    member = next(iter(timers(bridge, kind)))
    bridge.redis.zadd(bridge.keys.timers, {member: int(time.time() * 1000)}, xx=True)
    return member


def fire_all(bridge: Bridge, kind: str) -> list[str]:
    """Bring every armed timer of one kind forward to now; returns their members."""
    members = list(timers(bridge, kind))
    if members:
        bridge.redis.zadd(bridge.keys.timers, dict.fromkeys(members, int(time.time() * 1000)), xx=True)
    return members


def fired_at(bridge: Bridge, member: str) -> float:
    """When the router moved a timer into the stream, by the fired marker's remaining life
    (never earlier than that moment: the time is read after the marker's TTL)."""
    left_ms = bridge.redis.pttl(bridge.keys.fired_prefix + member)  # set when the router moved the timer
    assert left_ms > 0, f"timer {member} has not fired"
    return time.time() - (FIRED_MARKER_TTL_SECONDS * 1000 - left_ms) / 1000


def test_out_of_hours_messages_reach_slack_and_the_child_hears_once(bridge_factory: Any, tmp_path: Path) -> None:
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(closed_now(tmp_path)))
    for n in range(3):
        assert bridge.line_events(line_text_event(A, f"夜の相談 {n}")).status_code == 200
    _, texts = wait_thread(bridge, 3)
    assert texts == ["夜の相談 0", "夜の相談 1", "夜の相談 2"]  # nothing a child writes is dropped
    assert "時間外に受信" in roots(bridge)[0]["text"]
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.accepted_replies()) == 1)
    bridge.wait_settled()
    replies = bridge.fake_line.accepted_replies()
    assert len(replies) == 1 and not bridge.fake_line.accepted_pushes()
    weekday = "月火水木金土日"[(datetime.now(TOKYO) + timedelta(days=2)).weekday()]
    text = replies[0]["messages"][0]["text"]
    assert f"{weekday}曜日 13:00" in text and "0120-967-866" in text
    assert timers(bridge, "opening")


def test_opening_lists_the_cases_that_arrived_while_closed(bridge_factory: Any, tmp_path: Path) -> None:
    policy = closed_now(tmp_path)
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "一人目"))
    wait_thread(bridge, 1)
    bridge.line_events(line_text_event(B, "二人目"))
    wait_thread(bridge, 1, root_index=1)
    # The service opens: the worker now reads an open policy, and the opening timer comes due.
    worker = next(p for p in bridge.processes if p.name == "worker")
    worker.stop()
    write_policy(tmp_path, hours=ALWAYS_OPEN, name="closed.toml")
    bridge.start("worker")
    fire_now(bridge, "opening")
    bridge.fake_slack.wait_for(lambda: len(roots(bridge)) == 3)
    digest = roots(bridge)[2]["text"]
    assert "受付を開始しました" in digest and "2 件" in digest
    assert digest.index("#1") < digest.index("#2")
    bridge.wait_settled()
    assert len(roots(bridge)) == 3  # one digest, once
    assert not bridge.redis.zrange(bridge.keys.closed_arrivals, 0, -1)


def test_a_case_arriving_when_capacity_is_full_is_told_its_place(bridge_factory: Any, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, capacity={"cases": 1, "busy_notice_seconds": 600})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "一人目"))
    wait_thread(bridge, 1)
    bridge.line_events(line_text_event(B, "二人目"))
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.accepted_replies()) == 1)
    text = bridge.fake_line.accepted_replies()[0]["messages"][0]["text"]
    assert "2 番目" in text and "0120-967-866" in text
    bridge.wait_settled()
    assert len(bridge.fake_line.accepted_replies()) == 1  # the first child was not told anything
    assert not bridge.fake_line.accepted_pushes()


def test_unanswered_cases_get_one_busy_notice_answered_ones_none(bridge_factory: Any, tmp_path: Path) -> None:
    # A controlled clock: the deadlines are far away and brought forward once B is answered,
    # so how fast the counsellor's reply is decided cannot decide the outcome.
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, capacity={"cases": 5, "busy_notice_seconds": 600})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "だれかいますか"))
    a_root, _ = wait_thread(bridge, 1)
    bridge.line_events(line_text_event(B, "聞いてほしい"))
    b_root, _ = wait_thread(bridge, 1, root_index=1)
    reply_ts = bridge.counsellor_reply(b_root, "聞いてるよ")
    bridge.fake_slack.wait_for(lambda: "white_check_mark" in bridge.fake_slack.reactions_on(reply_ts))
    bridge.wait_settled()
    # Each case's deadline is busy_notice_seconds after it opened, and nothing came before it.
    deadlines = sorted(timers(bridge, "busy").values())
    opened = [float(bridge.redis.hget(bridge.keys.case(n), "opened_at") or 0) for n in (1, 2)]
    assert deadlines == pytest.approx([at + 600 for at in opened], abs=0.01)
    assert bridge.fake_line.texts_to(A) == []
    assert len(fire_all(bridge, "busy")) == 2
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(A)) == 1)
    bridge.wait_settled()
    (notice,) = bridge.fake_line.texts_to(A)
    assert "1 番目" in notice and "0120-967-866" in notice
    assert bridge.fake_line.texts_to(B) == ["聞いてるよ"]
    # B's root shows who is with the case; A's still waits.
    updates = bridge.fake_slack.updates_of(b_root)
    assert updates and "対応中: <@UCOUNSEL1>" in updates[-1]["text"]
    assert "対応待ち" in bridge.fake_slack.message(a_root)["text"]


def test_open_cases_are_reminded_before_closing(bridge_factory: Any, tmp_path: Path) -> None:
    # A zone where it is daytime now, so "closes in 30 minutes" stays on today's date.
    zone = next(
        z for z in ("Asia/Tokyo", "Europe/London", "America/New_York") if 1 <= datetime.now(ZoneInfo(z)).hour <= 21
    )
    now = datetime.now(ZoneInfo(zone))
    end = (now + timedelta(minutes=30)).strftime("%H:%M")
    hours: dict[str, list[str]] = {day: [] for day in WEEKDAYS} | {WEEKDAYS[now.weekday()]: [f"00:00-{end}"]}
    policy = write_policy(tmp_path, hours=hours)
    policy.write_text(policy.read_text().replace('timezone = "Asia/Tokyo"', f'timezone = "{zone}"'))
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy))
    bridge.line_events(line_text_event(A, "まだ大丈夫？"))
    root_ts, _ = wait_thread(bridge, 1)
    fire_now(bridge, "closing")
    bridge.fake_slack.wait_for(lambda: len(bot_thread(bridge, root_ts)) == 2)
    reminder = bot_thread(bridge, root_ts)[1]
    assert re.search(r"あと\d+分で受付時間が終わります", reminder) and end in reminder
    assert bridge.fake_line.texts_to(A) == []  # the child is not told


def test_a_deadline_that_passed_while_no_worker_ran_fires_once_after(bridge_factory: Any, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, capacity={"busy_notice_seconds": 600})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy), worker=2)
    bridge.line_events(line_text_event(A, "だれか"))
    wait_thread(bridge, 1)
    bridge.wait_settled()
    for process in [p for p in bridge.processes if p.name == "worker"]:
        process.stop()
    # The busy deadline passes with no worker running: a controlled clock moves it into the past
    # only once both are stopped, however long stopping them took.
    (member,) = timers(bridge, "busy")
    bridge.redis.zadd(bridge.keys.timers, {member: int((time.time() - 1) * 1000)}, xx=True)
    assert bridge.fake_line.texts_to(A) == []
    restarted = [bridge.launch("worker"), bridge.launch("worker")]  # two race for the same timer
    for process in restarted:
        bridge.ready(process)
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.texts_to(A)) == 1)
    bridge.wait_settled()
    assert not timers(bridge, "busy")
    (notice,) = bridge.fake_line.texts_to(A)
    assert "1 番目" in notice


def test_a_busy_deadline_fires_on_time_never_before(bridge_factory: Any, tmp_path: Path) -> None:
    """Real time, because timing is the point: the notice never comes before its deadline (load
    cannot make it early), the router moves the timer into the stream within a second of the
    deadline (one step, measured in Redis), and the child has it soon after (the whole way
    through web, router, lane and LINE, whose speed is the machine's, so generously bounded)."""
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, capacity={"busy_notice_seconds": 2})
    bridge: Bridge = bridge_factory(BRIDGE_CONFIG=str(policy), worker=2)
    bridge.line_events(line_text_event(A, "まってる"))
    wait_thread(bridge, 1)
    opened_at = float(bridge.redis.hget(bridge.keys.case(1), "opened_at") or 0)
    deadline = opened_at + 2
    bridge.fake_line.wait_for(lambda: len(bridge.fake_line.accepted_pushes()) == 1)
    pushed_at = next(r.at for r in bridge.fake_line.requests_to(PUSH) if r.status == 200)
    fired = bridge.keys.fired_prefix
    member = next(k.decode()[len(fired) :] for k in bridge.redis.scan_iter(fired + "busy|*"))
    fired_late = fired_at(bridge, member) - deadline
    lateness = pushed_at - deadline
    print(f"busy timer fired {fired_late * 1000:.0f} ms, notice pushed {lateness * 1000:.0f} ms after its deadline")
    assert pushed_at >= deadline - 0.001  # the stored deadline has millisecond resolution
    assert fired_late < 1.0 * time_scale()
    assert lateness < 10 * time_scale()
    bridge.wait_settled()
    assert len(bridge.fake_line.accepted_pushes()) == 1
