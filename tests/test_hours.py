"""Opening hours in the core: out-of-hours replies, the busy notice, digests and reminders.

Pure decisions on the shipped policy, with a controlled clock (Asia/Tokyo).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge import core
from bridge.config.policy_file import load_policy
from bridge.core.case import Case, CaseStatus, CloseReason, Queue
from bridge.core.deliveries import ChannelPost, LinePush, LineReply, PostRole, RootUpdate, ThreadPost
from bridge.core.events import ChildMessage, TimerFired, TimerKind, timer_fired
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId
from bridge.core.policy import Policy
from bridge.core.schedule.model import Schedule
from tests.slack_text import slack

TOKYO = ZoneInfo("Asia/Tokyo")
CHILD = "Uchild-hours"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO).timestamp()


TUESDAY_MORNING = at("2026-12-01T10:00")  # closed; opens 13:00
TUESDAY_AFTERNOON = at("2026-12-01T14:00")  # open until 19:00


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")


def a_case(number: int = 4, opened_at: float = TUESDAY_MORNING, **changes: object) -> Case:
    fields: dict[str, object] = {"status": CaseStatus.OPEN, **changes}
    return Case(number=number, child_id=CHILD, opened_at=opened_at, **fields)  # type: ignore[arg-type]


def message(event_id: str = "ev1", token: str | None = "rt") -> ChildMessage:
    return ChildMessage(
        child_id=LineUserId(CHILD), event_id=event_id, timestamp_ms=0, reply_token=token, text="こんにちは"
    )


def test_out_of_hours_message_is_posted_and_answered_once(policy: Policy) -> None:
    case = a_case(arrived_closed=True)
    first = core.on_child_message(message(), case, policy, now=TUESDAY_MORNING, created=True)
    post, reply = first.deliveries
    assert isinstance(post, ThreadPost) and slack(post.text) == "こんにちは"
    assert isinstance(reply, LineReply) and reply.reply_token == "rt"
    assert "火曜日 13:00" in reply.texts[0] and "0120-967-866" in reply.texts[0]
    opening = at("2026-12-01T13:00")
    notice = next(e for e in first.effects if isinstance(e, core.MarkClosedNotice))
    assert notice.until == opening
    assert core.NoteClosedArrival(CaseNumber(4), TUESDAY_MORNING) in first.effects
    assert core.ScheduleTimer(TimerKind.OPENING, opening, instant=int(opening)) in first.effects

    second = core.on_child_message(
        message("ev2"), case, policy, now=TUESDAY_MORNING + 60, created=False, closed_notice=notice.period
    )
    assert [type(d) for d in second.deliveries] == [ThreadPost]  # no second automatic reply
    assert not any(isinstance(e, core.MarkClosedNotice) for e in second.effects)


def test_an_older_unanswered_case_written_to_after_closing_waits_again(policy: Policy) -> None:
    evening = at("2026-12-01T19:30")
    older = a_case(opened_at=at("2026-12-01T18:50"))
    decision = core.on_child_message(message(), older, policy, now=evening, created=False)
    post, root, reply = decision.deliveries
    assert isinstance(post, ThreadPost)
    assert isinstance(root, RootUpdate) and "時間外に受信" in slack(root.text)
    assert isinstance(reply, LineReply) and "水曜日 13:00" in reply.texts[0]
    assert (
        core.MarkArrivedClosed(CaseNumber(4)) in decision.effects
        and core.NoteClosedArrival(CaseNumber(4), evening) in decision.effects
    )


def test_a_new_closed_period_gets_a_new_reply(policy: Policy) -> None:
    last_period = datetime(2026, 11, 28, 12, 0, tzinfo=TOKYO).isoformat()  # from Saturday's closing
    decision = core.on_child_message(
        message(), a_case(), policy, now=TUESDAY_MORNING, created=False, closed_notice=last_period
    )
    assert any(isinstance(d, LineReply) for d in decision.deliveries)


def test_no_automatic_reply_while_a_counsellor_is_talking_after_closing(policy: Policy) -> None:
    evening = at("2026-12-01T19:20")
    engaged = a_case(
        opened_at=at("2026-12-01T18:30"),
        counsellor="UC",
        counsellor_since=at("2026-12-01T18:35"),
        last_counsellor_at=at("2026-12-01T19:15"),
    )
    decision = core.on_child_message(message(), engaged, policy, now=evening, created=False)
    assert [type(d) for d in decision.deliveries] == [ThreadPost]
    assert decision.effects == (core.NoteChildMessage(CaseNumber(4), evening),)
    # The next evening, the same (still open) case is no live conversation any more.
    next_evening = evening + 86400
    later = core.on_child_message(message("ev9"), engaged, policy, now=next_evening, created=False)
    assert any(isinstance(d, LineReply) for d in later.deliveries)


def test_the_new_year_closure_names_the_date(policy: Policy) -> None:
    decision = core.on_child_message(message(), a_case(), policy, now=at("2026-12-28T15:00"), created=True)
    reply = decision.deliveries[1]
    assert isinstance(reply, LineReply) and "1月5日(火) 13:00" in reply.texts[0]


def test_a_schedule_that_never_opens_says_so(policy: Policy) -> None:
    never = dataclasses.replace(policy, schedule=Schedule.from_config({}, TOKYO))
    decision = core.on_child_message(message(), a_case(), never, now=TUESDAY_MORNING, created=True)
    reply = decision.deliveries[1]
    assert isinstance(reply, LineReply) and "お休み" in reply.texts[0] and "0120-967-866" in reply.texts[0]
    assert not any(isinstance(e, core.ScheduleTimer) for e in decision.effects)


def test_a_new_case_when_full_is_told_at_once_with_its_place(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON)
    full = core.on_child_message(
        message(), case, policy, now=TUESDAY_AFTERNOON, created=True, queue=Queue(open_cases=4, place=2)
    )
    busy = full.deliveries[1]
    assert isinstance(busy, LineReply) and "2 番目" in busy.texts[0] and "0120-967-866" in busy.texts[0]
    assert core.MarkBusyNotified(CaseNumber(4)) in full.effects
    assert not any(isinstance(e, core.ScheduleTimer) and e.kind == TimerKind.BUSY for e in full.effects)


def test_a_new_case_with_room_gets_timers_instead(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON)
    decision = core.on_child_message(
        message(), case, policy, now=TUESDAY_AFTERNOON, created=True, queue=Queue(open_cases=3, place=3)
    )
    assert [type(d) for d in decision.deliveries] == [ThreadPost]
    busy_at = TUESDAY_AFTERNOON + 180
    assert decision.effects == (
        core.NoteChildMessage(CaseNumber(4), TUESDAY_AFTERNOON),
        core.ScheduleTimer(TimerKind.BUSY, busy_at, case=CaseNumber(4), instant=int(busy_at)),
        core.ScheduleTimer(TimerKind.UNANSWERED, TUESDAY_AFTERNOON + 300, case=CaseNumber(4)),
        core.ScheduleTimer(TimerKind.SOFT_WARNING, TUESDAY_AFTERNOON + 3000, case=CaseNumber(4)),
        core.ScheduleTimer(TimerKind.SOFT_LIMIT, TUESDAY_AFTERNOON + 3600, case=CaseNumber(4)),
        core.ScheduleTimer(TimerKind.OVERTIME, TUESDAY_AFTERNOON + 5400, case=CaseNumber(4)),
        core.ScheduleTimer(TimerKind.UNANSWERED_CLOSE, TUESDAY_AFTERNOON + 72 * 3600, case=CaseNumber(4)),
    )
    assert timer_fired(f"busy|4:{int(busy_at)}") == TimerFired(TimerKind.BUSY, case=CaseNumber(4), instant=int(busy_at))


def test_no_closing_reminder_timer_inside_the_last_minutes(policy: Policy) -> None:
    assert core.standing_timers(policy, now=at("2026-12-01T18:50")) == ()


@pytest.mark.parametrize(
    ("changes", "now", "expected_push"),
    [
        ({}, TUESDAY_AFTERNOON + 180, True),
        ({"counsellor": "UC"}, TUESDAY_AFTERNOON + 180, False),
        ({"busy_notified": True}, TUESDAY_AFTERNOON + 180, False),
        ({"status": CaseStatus.CLOSED}, TUESDAY_AFTERNOON + 180, False),
        ({}, at("2026-12-01T19:30"), False),  # closed by then: the closed reply has said enough
    ],
    ids=["unanswered", "answered", "already-told", "closed-case", "after-hours"],
)
def test_the_busy_timer(policy: Policy, changes: dict[str, Any], now: float, expected_push: bool) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON, **changes)
    decision = core.on_busy_timer(case, policy, now=now, queue=Queue(open_cases=2, place=1))
    pushes = [d for d in decision.deliveries if isinstance(d, LinePush)]
    assert bool(pushes) is expected_push
    if expected_push:
        assert "1 番目" in pushes[0].texts[0]
        assert decision.effects == (core.MarkBusyNotified(CaseNumber(4)),)


def test_the_opening_digest_lists_waiting_cases_oldest_first(policy: Policy) -> None:
    opening = at("2026-12-01T13:00")
    arrivals = [
        (a_case(7, arrived_closed=True), at("2026-12-01T09:30")),
        (a_case(5, arrived_closed=True), at("2026-11-30T22:10")),
        (a_case(6, status=CaseStatus.CLOSED), at("2026-12-01T08:00")),  # closed meanwhile
    ]
    # Redis's clock a little behind the worker's: still judged at the opening instant.
    decision = core.on_opening_timer(arrivals, policy, now=opening - 0.004, opening_at=opening)
    (digest,) = decision.deliveries
    assert isinstance(digest, ChannelPost)
    assert slack(digest.text).index("#5") < slack(digest.text).index("#7") and "#6" not in slack(digest.text)
    assert "2 件" in slack(digest.text)
    assert core.ClearClosedArrivals((CaseNumber(7), CaseNumber(5), CaseNumber(6))) in decision.effects
    # The waiting children get their busy-notice timers from the opening on.
    busy = [e for e in decision.effects if isinstance(e, core.ScheduleTimer) and e.kind == TimerKind.BUSY]
    assert sorted((t.case for t in busy), key=lambda n: n or 0) == [5, 7] and {t.at for t in busy} == {opening + 180}


def test_no_digest_without_waiting_cases(policy: Policy) -> None:
    opening = at("2026-12-01T13:00")
    decision = core.on_opening_timer([], policy, now=opening, opening_at=opening)
    assert decision.deliveries == ()


def test_an_opening_timer_that_fires_after_closing_waits_for_the_next_opening(policy: Policy) -> None:
    arrivals = [(a_case(5, arrived_closed=True), at("2026-11-30T22:10"))]
    decision = core.on_opening_timer(arrivals, policy, now=at("2026-12-01T19:30"), opening_at=at("2026-12-01T13:00"))
    wednesday = at("2026-12-02T13:00")
    assert decision == core.Decision(
        effects=(core.ScheduleTimer(TimerKind.OPENING, wednesday, instant=int(wednesday)),)
    )


def test_a_busy_timer_after_closing_moves_to_the_next_opening(policy: Policy) -> None:
    case = a_case(opened_at=at("2026-12-01T18:58"))
    decision = core.on_busy_timer(case, policy, now=at("2026-12-01T19:01"), queue=None)
    wednesday = at("2026-12-02T13:00") + 180
    assert decision == core.Decision(effects=(core.busy_timer(CaseNumber(4), wednesday),))


def test_the_closing_reminder_goes_to_every_open_case(policy: Policy) -> None:
    closing = at("2026-12-01T19:00")
    cases = [a_case(1), a_case(2), a_case(3, status=CaseStatus.CLOSED)]
    decision = core.on_closing_timer(cases, closing, policy, now=closing - 15 * 60)
    assert [d.case for d in decision.deliveries if isinstance(d, ThreadPost)] == [1, 2]
    reminder = decision.deliveries[0]
    assert isinstance(reminder, ThreadPost) and "15分" in slack(reminder.text) and "19:00" in slack(reminder.text)
    assert core.on_closing_timer(cases, closing, policy, now=closing + 60) == core.NOTHING


def test_root_states(policy: Policy) -> None:
    waiting = slack(core.root_text(a_case(opened_at=TUESDAY_AFTERNOON), policy))
    assert "#4" in waiting and "対応待ち（14:00から）" in waiting
    night = slack(core.root_text(a_case(opened_at=at("2026-11-30T22:10"), arrived_closed=True), policy))
    assert "時間外に受信" in night and "11/30(月) 22:10" in night
    answered = slack(core.root_text(a_case(counsellor="UC1", counsellor_since=TUESDAY_AFTERNOON + 300), policy))
    assert "対応中: <@UC1>（14:05から）" in answered
    closed = slack(
        core.root_text(
            a_case(status=CaseStatus.CLOSED, closed_at=TUESDAY_AFTERNOON + 600, closed_reason="unfollowed"), policy
        )
    )
    assert "終了（相談者がブロック、14:10）" in closed


def test_the_closing_reminder_timer_stands_whatever_happens(policy: Policy) -> None:
    closing = at("2026-12-01T19:00")
    assert core.standing_timers(policy, now=TUESDAY_AFTERNOON) == (
        core.ScheduleTimer(TimerKind.CLOSING, closing - 15 * 60, instant=int(closing)),
    )
    # While closed, the next period's reminder is already known.
    (next_reminder,) = core.standing_timers(policy, now=TUESDAY_MORNING)
    assert isinstance(next_reminder, core.ScheduleTimer) and next_reminder.at == closing - 15 * 60


def test_the_wording_of_openings_and_hours_comes_from_the_policy(policy: Policy) -> None:
    words = {
        **policy.texts,
        "opening_this_week": "{weekday}-{time}",
        "weekday_names": "MTWTFSS",
        "hours_closures": " (closed {closures})",
    }
    english = dataclasses.replace(policy, texts=words)
    decision = core.on_child_message(message(), a_case(), english, now=TUESDAY_MORNING, created=True)
    reply = decision.deliveries[1]
    assert isinstance(reply, LineReply) and "T-13:00" in reply.texts[0]
    assert english.hours_summary().startswith("T〜F 13:00〜19:00、S 12:00〜18:00 (closed 12月29日")
    night = a_case(opened_at=at("2026-11-30T22:10"), arrived_closed=True)
    assert "11/30(M) 22:10" in slack(core.root_text(night, english))  # the root's date too


def test_an_unanswered_case_is_pointed_out_to_those_on_duty(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON, thread_ts="1800000000.000100")
    decision = core.on_unanswered_timer(case, policy, now=TUESDAY_AFTERNOON + 300)
    (alert,) = decision.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "cases"
    assert "<!here>" in slack(alert.text) and "#4" in slack(alert.text) and "5分" in slack(alert.text)
    assert "https://slack.com/archives/CCASES/p1800000000000100" in slack(alert.text)
    group = dataclasses.replace(policy, on_duty_group="S0DUTY")
    grouped = core.on_unanswered_timer(case, group, now=TUESDAY_AFTERNOON + 300).deliveries[0]
    assert "<!subteam^S0DUTY>" in slack(grouped.text)  # type: ignore[union-attr]
    answered = dataclasses.replace(case, counsellor=SlackUserId("UC"))
    assert core.on_unanswered_timer(answered, policy, now=TUESDAY_AFTERNOON + 300) == core.NOTHING


def test_the_one_hour_guideline_reminds_the_thread_then_tells_supervisors(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON, thread_ts="1.2")
    warning = core.on_guideline_timer(TimerKind.SOFT_WARNING, case, policy, now=TUESDAY_AFTERNOON + 3000)
    (note,) = warning.deliveries
    assert isinstance(note, ThreadPost) and note.role == "note" and "50分" in slack(note.text)
    limit = core.on_guideline_timer(TimerKind.SOFT_LIMIT, case, policy, now=TUESDAY_AFTERNOON + 3600)
    assert "60分" in slack(limit.deliveries[0].text)  # type: ignore[union-attr]
    overtime = core.on_guideline_timer(TimerKind.OVERTIME, case, policy, now=TUESDAY_AFTERNOON + 5400)
    (alert,) = overtime.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and "90分" in slack(alert.text)
    # Nothing ever goes to the child, and a closed case is left alone.
    assert not any(isinstance(d, LinePush | LineReply) for d in (*warning.deliveries, *overtime.deliveries))
    closed = dataclasses.replace(case, status=CaseStatus.CLOSED)
    assert core.on_guideline_timer(TimerKind.OVERTIME, closed, policy, now=0) == core.NOTHING


def test_a_later_case_lists_the_childs_earlier_ones(policy: Policy) -> None:
    text = slack(core.root_text(a_case(number=9, earlier=(3, 7)), policy))
    assert "#9" in text and "以前の相談: #3, #7" in text
    assert "以前の相談" not in slack(core.root_text(a_case(), policy))


def test_silence_after_a_counsellor_brings_a_check_in_then_the_close(policy: Policy) -> None:
    replied = TUESDAY_AFTERNOON + 60
    replied_ms = round(replied * 1000)
    case = a_case(opened_at=TUESDAY_AFTERNOON, counsellor="UC", last_counsellor_at=replied)
    (checkin,) = core.on_silence_timer(TimerKind.IDLE_WARNING, replied_ms, case, policy, now=replied + 480).deliveries
    assert isinstance(checkin, LinePush) and checkin.to == CHILD
    closing = core.on_silence_timer(TimerKind.IDLE_CLOSE, replied_ms, case, policy, now=replied + 600)
    push, note, root = closing.deliveries
    assert isinstance(push, LinePush) and "0120-967-866" in push.texts[0]
    assert isinstance(note, ThreadPost) and "10分間" in slack(note.text)
    assert isinstance(root, RootUpdate) and "返信なし" in slack(root.text)
    assert closing.effects == (core.CloseCase(CaseNumber(4), core.CloseReason.IDLE),)


@pytest.mark.parametrize(
    "changes",
    [
        {"last_child_at": TUESDAY_AFTERNOON + 61},  # the child wrote after the counsellor
        {"last_counsellor_at": TUESDAY_AFTERNOON + 90},  # a later counsellor message has its own timers
        {"hold": True},  # a counsellor stopped the automatic close
        {"status": CaseStatus.CLOSED},
    ],
    ids=["child-wrote", "newer-counsellor-message", "on-hold", "closed"],
)
def test_silence_timers_that_no_longer_apply_do_nothing(policy: Policy, changes: dict[str, Any]) -> None:
    replied = TUESDAY_AFTERNOON + 60
    replied_ms = round(replied * 1000)
    case = a_case(opened_at=TUESDAY_AFTERNOON, counsellor="UC", **{"last_counsellor_at": replied, **changes})
    for kind in (TimerKind.IDLE_WARNING, TimerKind.IDLE_CLOSE):
        assert core.on_silence_timer(kind, replied_ms, case, policy, now=replied + 600) == core.NOTHING


def test_a_childs_message_resets_the_silence_clock(policy: Policy) -> None:
    decision = core.on_child_message(message(), a_case(), policy, now=TUESDAY_AFTERNOON, created=False)
    assert core.NoteChildMessage(CaseNumber(4), TUESDAY_AFTERNOON) in decision.effects


@pytest.mark.parametrize(
    ("text", "number"), [("12", 12), (" #12 ", 12), ("＃１２", 12), ("12a", None), ("", None), ("²", None)]
)
def test_case_numbers_as_counsellors_type_them(text: str, number: int | None) -> None:
    assert core.parse_case_number(text) == number


def test_a_held_waiting_case_shows_it_too(policy: Policy) -> None:
    assert "自動終了停止中" in slack(core.root_text(a_case(hold=True), policy))
    assert "自動終了停止中" in slack(core.root_text(a_case(hold=True, arrived_closed=True), policy))


# --- what the timers and the out-of-hours path say, exactly ------------------------------


def test_the_out_of_hours_notice_names_its_period_and_a_plain_message_leaves_room_for_crisis_lines(
    policy: Policy,
) -> None:
    opening = at("2026-12-01T13:00")
    period = datetime.fromtimestamp(opening, TOKYO).isoformat()
    plain = core.on_child_message(message(), a_case(), policy, now=TUESDAY_MORNING, created=False)
    reply = plain.deliveries[-1]
    assert isinstance(reply, LineReply) and reply.case == 4  # a refused reply is reported in the case's thread
    assert core.MarkClosedNotice(LineUserId(CHILD), period, opening) in plain.effects
    # Risk words later in the same period still bring the crisis lines, once.
    risky = dataclasses.replace(message("ev2"), text="死にたい")
    later = core.on_child_message(
        risky, a_case(), policy, now=TUESDAY_MORNING + 60, created=False, closed_notice=period
    )
    (crisis,) = [d for d in later.deliveries if isinstance(d, LineReply)]
    assert crisis.texts == (policy.render("crisis_lines"),)
    assert core.MarkClosedNotice(LineUserId(CHILD), period + "+crisis", opening) in later.effects


def test_a_schedule_that_never_opens_repeats_its_notice_weekly(policy: Policy) -> None:
    never = dataclasses.replace(policy, schedule=Schedule.from_config({}, TOKYO))
    decision = core.on_child_message(message(), a_case(), never, now=TUESDAY_MORNING, created=True)
    (notice,) = [e for e in decision.effects if isinstance(e, core.MarkClosedNotice)]
    assert notice.until == TUESDAY_MORNING + 7 * 86400


def test_the_busy_notice_names_the_place_in_the_queue(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON)
    decision = core.on_busy_timer(case, policy, now=TUESDAY_AFTERNOON + 180, queue=Queue(open_cases=5, place=3))
    (push,) = decision.deliveries
    assert push == LinePush(
        to=LineUserId(CHILD),
        texts=(policy.render("busy_notice", place=3),),
        retry_key=core.retry_key("busy-timer:4"),
        case=CaseNumber(4),
    )
    unknown = core.on_busy_timer(case, policy, now=TUESDAY_AFTERNOON + 180, queue=None).deliveries[0]
    assert isinstance(unknown, LinePush) and unknown.texts == (policy.render("busy_notice", place=1),)


def test_the_opening_digest_text_and_who_gets_a_busy_timer(policy: Policy) -> None:
    opening = at("2026-12-01T13:00")
    arrivals = [
        (a_case(7, arrived_closed=True), at("2026-12-01T09:30")),
        (a_case(5, arrived_closed=True), at("2026-12-01T09:30")),  # the same second: both listed, in order
        (
            a_case(8, arrived_closed=True, counsellor="UC", last_counsellor_at=at("2026-11-30T20:00")),
            at("2026-12-01T08:00"),
        ),
    ]
    decision = core.on_opening_timer(arrivals, policy, now=opening, opening_at=opening)
    (digest,) = decision.deliveries
    lines = [
        policy.render("opening_digest_line", case=n, arrived_at=when)
        for n, when in [(8, "12/01(火) 08:00"), (7, "12/01(火) 09:30"), (5, "12/01(火) 09:30")]
    ]
    assert isinstance(digest, ChannelPost) and slack(digest.text) == policy.render(
        "opening_digest", count=3, cases="\n".join(lines)
    )
    # Case 8 has its counsellor already: no busy notice for it.
    busy = [e for e in decision.effects if isinstance(e, core.ScheduleTimer) and e.kind == TimerKind.BUSY]
    assert sorted((t.case for t in busy), key=lambda n: n or 0) == [5, 7]
    off = dataclasses.replace(policy, busy_notice_seconds=0)  # 0 turns the busy notice off
    quiet = core.on_opening_timer(arrivals, off, now=opening, opening_at=opening)
    assert not any(isinstance(e, core.ScheduleTimer) and e.kind == TimerKind.BUSY for e in quiet.effects)


def test_the_closing_reminder_text_and_when_it_is_not_sent(policy: Policy) -> None:
    closing = at("2026-12-01T19:00")
    hour = core.on_closing_timer([a_case(1)], closing, policy, now=closing - 3600)
    assert hour.deliveries == (
        ThreadPost(
            case=CaseNumber(1),
            text=policy.render_parts("closing_reminder", minutes=60, closing_at="19:00"),
            role=PostRole.NOTE,
        ),
    )
    last = core.on_closing_timer([a_case(1)], closing, policy, now=closing - 20)
    assert "あと1分" in slack(last.deliveries[0].text)  # type: ignore[union-attr]
    # Fired late (already closed), or the hours changed so that it is closed now: nothing.
    assert core.on_closing_timer([a_case(1)], closing, policy, now=closing + 60) == core.NOTHING
    assert core.on_closing_timer([a_case(1)], closing, policy, now=at("2026-12-01T11:00")) == core.NOTHING


def test_no_closing_reminder_timer_exactly_at_the_reminder_time(policy: Policy) -> None:
    assert core.standing_timers(policy, now=at("2026-12-01T18:45")) == ()
    assert core.standing_timers(policy, now=at("2026-12-01T18:44:59")) != ()


def test_the_unanswered_alert_text(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON, thread_ts="1800000000.000100")
    decision = core.on_unanswered_timer(case, policy, now=TUESDAY_AFTERNOON + 3600)
    link = "https://slack.com/archives/CCASES/p1800000000000100"
    text = policy.render("unanswered_alert", mention="<!here>", case=4, minutes=60, link=link)
    (alert,) = decision.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "cases" and slack(alert.text) == text


def test_the_guideline_texts(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON, thread_ts="1800000000.000100")
    warning = core.on_guideline_timer(TimerKind.SOFT_WARNING, case, policy, now=0)
    assert warning.deliveries == (
        ThreadPost(
            case=CaseNumber(4), text=policy.render_parts("soft_limit_warning_note", minutes=50), role=PostRole.NOTE
        ),
    )
    limit = core.on_guideline_timer(TimerKind.SOFT_LIMIT, case, policy, now=0)
    assert limit.deliveries == (
        ThreadPost(case=CaseNumber(4), text=policy.render_parts("soft_limit_note", minutes=60), role=PostRole.NOTE),
    )
    overtime = core.on_guideline_timer(TimerKind.OVERTIME, case, policy, now=0)
    link = "https://slack.com/archives/CCASES/p1800000000000100"
    text = policy.render("overtime_alert", case=4, minutes=90, link=link)
    (alert,) = overtime.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and slack(alert.text) == text


def test_a_zero_turns_a_timer_off(policy: Policy) -> None:
    off = dataclasses.replace(policy, idle_warning_seconds=0, unanswered_alert_seconds=0)
    case = a_case(opened_at=TUESDAY_AFTERNOON)
    silence = core.silence_timers(case, off, TUESDAY_AFTERNOON)
    assert [t.kind for t in silence] == [TimerKind.IDLE_CLOSE]  # type: ignore[union-attr]
    started = core.consultation_timers(case, off, TUESDAY_AFTERNOON)
    assert TimerKind.UNANSWERED not in [t.kind for t in started]  # type: ignore[union-attr]


def test_silence_counts_from_the_counsellors_message_when_the_child_wrote_before_it(policy: Policy) -> None:
    replied = TUESDAY_AFTERNOON + 60
    replied_ms = round(replied * 1000)
    case = a_case(opened_at=TUESDAY_AFTERNOON, counsellor="UC", last_counsellor_at=replied, last_child_at=replied - 30)
    (checkin,) = core.on_silence_timer(TimerKind.IDLE_WARNING, replied_ms, case, policy, now=replied + 480).deliveries
    assert checkin == LinePush(
        to=LineUserId(CHILD),
        texts=(policy.render("idle_checkin"),),
        retry_key=core.retry_key(f"idle-warning:4:{replied_ms}"),
        case=CaseNumber(4),
    )
    push, _note, root = core.on_silence_timer(
        TimerKind.IDLE_CLOSE, replied_ms, case, policy, now=replied + 600
    ).deliveries
    assert isinstance(push, LinePush) and push.case == 4
    assert isinstance(root, RootUpdate) and "終了（返信なし、14:11）" in slack(root.text)  # closed now, not at opening


def test_a_live_conversation_lasts_under_an_hour_after_the_last_reply() -> None:
    case = a_case(last_counsellor_at=TUESDAY_AFTERNOON)
    assert core.conversation_is_live(case, TUESDAY_AFTERNOON + 3599)
    assert not core.conversation_is_live(case, TUESDAY_AFTERNOON + 3600)


def test_root_states_show_when_and_their_markers(policy: Policy) -> None:
    night = slack(core.root_text(a_case(opened_at=at("2026-11-30T22:10"), arrived_closed=True), policy))
    assert policy.render("state_waiting_closed", since="11/30(月) 22:10") in night
    plain = slack(core.state_text(a_case(opened_at=TUESDAY_AFTERNOON), policy))
    assert plain == policy.render("state_waiting", since="14:00")  # no marker without a hold
    marked = core.state_text(a_case(opened_at=TUESDAY_AFTERNOON, hold=True, flood_until=at("2026-12-01T14:05")), policy)
    held, flood = policy.render("state_held"), policy.render("state_flood", until="14:05")
    assert slack(marked) == f"{plain}  {held}  {flood}"
    root = slack(core.root_text(a_case(opened_at=TUESDAY_AFTERNOON), policy))
    assert root.endswith(plain)  # no earlier cases: nothing more


def test_the_idle_close_note_names_the_configured_silence(policy: Policy) -> None:
    hour = dataclasses.replace(policy, idle_close_seconds=3600)
    replied = TUESDAY_AFTERNOON + 60
    replied_ms = round(replied * 1000)
    case = a_case(opened_at=TUESDAY_AFTERNOON, counsellor="UC", last_counsellor_at=replied)
    _push, note, _root = core.on_silence_timer(
        TimerKind.IDLE_CLOSE, replied_ms, case, hour, now=replied + 3600
    ).deliveries
    assert note == ThreadPost(
        case=CaseNumber(4), text=hour.render_parts("idle_closed_note", minutes=60), role=PostRole.NOTE
    )


def test_the_earlier_cases_follow_the_state_after_two_spaces(policy: Policy) -> None:
    case = a_case(number=9, opened_at=TUESDAY_AFTERNOON, earlier=(3, 7))
    expected = slack(core.state_text(case, policy)) + "  " + policy.render("earlier_cases", cases="#3, #7")
    assert slack(core.root_text(case, policy)).endswith(expected)


def test_a_case_nobody_answered_for_the_hours_is_closed_with_a_note(policy: Policy) -> None:
    case = a_case(opened_at=TUESDAY_AFTERNOON)
    later = TUESDAY_AFTERNOON + 72 * 3600
    decision = core.on_unanswered_close_timer(case, policy, now=later)
    note, root = decision.deliveries
    assert isinstance(note, ThreadPost) and note.role == "note" and "72 時間" in slack(note.text)
    assert isinstance(root, RootUpdate) and "応答のないまま" in slack(root.text)
    assert core.CloseCase(CaseNumber(4), CloseReason.UNANSWERED) in decision.effects
    assert not any(isinstance(d, LinePush | LineReply) for d in decision.deliveries)  # the child is not written to
    answered = dataclasses.replace(case, counsellor=SlackUserId("UC"), counsellor_since=TUESDAY_AFTERNOON + 60)
    held = dataclasses.replace(case, hold=True)
    closed = dataclasses.replace(case, status=CaseStatus.CLOSED)
    for untouched in (answered, held, closed, None):
        assert core.on_unanswered_close_timer(untouched, policy, now=later) == core.NOTHING
    off = dataclasses.replace(policy, unanswered_close_hours=0)
    timers = core.on_child_message(message(), case, off, now=TUESDAY_AFTERNOON, created=True, queue=Queue(1, 1)).effects
    assert not any(isinstance(e, core.ScheduleTimer) and e.kind == TimerKind.UNANSWERED_CLOSE for e in timers)
