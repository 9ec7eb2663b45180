"""Case controls and the safety net in the core: pure decisions on the shipped policy."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge import core
from bridge.config.policy_file import load_policy
from bridge.core.case import Block, Case, CaseStatus
from bridge.core.deliveries import ChannelPost, Ephemeral, LinePush, LineReply, PostRole, RootUpdate, ThreadPost
from bridge.core.events import ChildMessage, ControlRequested, ControlVia, Media, TimerKind
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs
from bridge.core.parts import ChildWords
from bridge.core.policy import Policy
from bridge.core.rules import controls
from bridge.core.rules.controls import Roster
from bridge.core.rules.floods import Deferred, Recent, is_flood
from bridge.core.rules.risk import is_risky, normalise
from tests.slack_text import slack

TOKYO = ZoneInfo("Asia/Tokyo")
CHILD = "Uchild-controls"
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=TOKYO).timestamp()  # Tuesday, open
NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=TOKYO).timestamp()  # Tuesday, closed
CHANNEL = "CCASES"
ROSTER = Roster(
    members=frozenset({SlackUserId("UC"), SlackUserId("US"), SlackUserId("UG")}),
    group_supervisors=frozenset({SlackUserId("UG")}),
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    shipped = load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")
    return dataclasses.replace(shipped, supervisors=frozenset({SlackUserId("US")}), supervisor_group="SSUPER")


def a_case(number: int = 4, **changes: object) -> Case:
    fields: dict[str, object] = {"status": CaseStatus.OPEN, "thread_ts": "1700000000.000100", **changes}
    return Case(number=number, child_id=CHILD, opened_at=NOW - 600, **fields)  # type: ignore[arg-type]


def request(
    action: str, text: str, *, user: str = "UC", via: str = "command", reason: str = "", thread_ts: str | None = None
) -> ControlRequested:
    thread = ThreadTs(thread_ts) if thread_ts is not None else None
    return ControlRequested(
        action=action, text=text, user=SlackUserId(user), via=ControlVia(via), reason=reason, thread_ts=thread
    )


def decide(
    req: ControlRequested,
    case: Case | None,
    policy: Policy,
    *,
    roster: Roster | None = ROSTER,
    block: Block | None = None,
    open_cases: list[Case] | None = None,
) -> core.Decision:
    return controls.on_control(req, case, policy, roster=roster, block=block, open_cases=open_cases or [], now=NOW)


def only_ephemeral(decision: core.Decision) -> Ephemeral:
    (answer,) = decision.deliveries
    assert isinstance(answer, Ephemeral)
    return answer


# --- checks every control goes through ---------------------------------------------------


@pytest.mark.parametrize("action", ["hold", "close", "escalate", "block", "unblock", "cases"])
def test_only_members_of_the_case_channel_may_use_a_control(policy: Policy, action: str) -> None:
    decision = decide(request(action, "4 理由", user="UOUTSIDER"), a_case(), policy)
    assert "メンバーだけ" in slack(only_ephemeral(decision).text)
    (audit,) = decision.effects  # the refusal is recorded, nothing else changes
    assert audit == core.Audit(
        CaseNumber(4), "UOUTSIDER", f"refused:{action}", "not a member of the case channel", ControlVia.COMMAND
    )


def test_an_unknown_roster_refuses_without_guessing(policy: Policy) -> None:
    decision = decide(request("close", "4"), a_case(), policy, roster=None)
    assert "確認できない" in slack(only_ephemeral(decision).text) and decision.effects == ()


@pytest.mark.parametrize(
    ("action", "text", "expected"),
    [
        ("close", "", "使い方: /close"),
        ("close", "abc", "使い方: /close"),
        ("block", "x 理由", "使い方: /block"),
        ("unblock", "", "使い方: /unblock"),
        ("escalate", "#", "使い方: /escalate"),
        ("hold", "12a", "使い方: /hold"),
    ],
)
def test_malformed_text_gets_the_usage_line(policy: Policy, action: str, text: str, expected: str) -> None:
    decision = decide(request(action, text, user="US"), None, policy)
    assert expected in slack(only_ephemeral(decision).text) and decision.effects == ()


def test_an_unknown_number_is_named_back(policy: Policy) -> None:
    decision = decide(request("close", "＃９９"), None, policy)
    assert "#99 は見つかりません" in slack(only_ephemeral(decision).text) and decision.effects == ()


@pytest.mark.parametrize("action", ["block", "escalate"])
def test_a_reason_is_required(policy: Policy, action: str) -> None:
    decision = decide(request(action, "4", user="US"), a_case(), policy)
    assert f"使い方: /{action}" in slack(only_ephemeral(decision).text) and decision.effects == ()
    by_button = decide(request(action, "4", user="US", via="button", reason="  "), a_case(), policy)
    answer = only_ephemeral(by_button)
    assert answer.case == 4  # a button's answer shows in the case's thread


@pytest.mark.parametrize("action", ["block", "unblock"])
def test_block_and_unblock_are_for_supervisors_only(policy: Policy, action: str) -> None:
    decision = decide(request(action, "4 迷惑行為"), a_case(), policy)
    assert "スーパーバイザーだけ" in slack(only_ephemeral(decision).text)
    assert decision.effects == (
        core.Audit(CaseNumber(4), "UC", f"refused:{action}", "not a supervisor", ControlVia.COMMAND),
    )


def test_supervisors_come_from_the_policy_ids_and_the_user_group(policy: Policy) -> None:
    assert ROSTER.is_supervisor(SlackUserId("US"), policy) and ROSTER.is_supervisor(SlackUserId("UG"), policy)
    assert not ROSTER.is_supervisor(SlackUserId("UC"), policy)


def test_the_shortcut_outside_a_case_thread_says_so(policy: Policy) -> None:
    decision = decide(request("close", "", via="shortcut", thread_ts="1.2"), None, policy)
    assert "相談のスレッドにありません" in slack(only_ephemeral(decision).text)


# --- close -----------------------------------------------------------------------------


def test_close_tells_the_child_notes_the_thread_and_closes(policy: Policy) -> None:
    decision = decide(request("close", "#4 学校と連携予定"), a_case(counsellor="UC"), policy)
    push, note, root, answer = decision.deliveries
    assert isinstance(push, LinePush) and push.to == CHILD and "終わりにします" in push.texts[0]
    assert isinstance(note, ThreadPost) and "<@UC>" in slack(note.text) and "学校と連携予定" in slack(note.text)
    assert isinstance(root, RootUpdate) and "<@UC> が終了" in slack(root.text) and "close" not in root.buttons
    assert isinstance(answer, Ephemeral) and answer.case is None and "#4" in slack(answer.text)
    assert decision.effects == (
        core.CloseCase(CaseNumber(4), core.CloseReason.COUNSELLOR, by=SlackUserId("UC")),
        core.Audit(CaseNumber(4), "UC", "close", "学校と連携予定", ControlVia.COMMAND),
    )


def test_closing_a_closed_case_changes_nothing(policy: Policy) -> None:
    decision = decide(request("close", "4"), a_case(status=CaseStatus.CLOSED), policy)
    assert "すでに終了" in slack(only_ephemeral(decision).text) and decision.effects == ()


def test_a_close_button_press_is_answered_by_the_thread_note(policy: Policy) -> None:
    decision = decide(request("close", "4", via="button"), a_case(), policy)
    assert not any(isinstance(d, Ephemeral) for d in decision.deliveries)


# --- escalate ----------------------------------------------------------------------------


def test_escalate_alerts_supervisors_marks_urgent_and_posts_the_checklist(policy: Policy) -> None:
    decision = decide(request("escalate", "4 自傷をほのめかしている"), a_case(), policy)
    alert, note, checklist, root, answer = decision.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors"
    for part in ("<!subteam^SSUPER>", "#4", "自傷をほのめかしている", "<@UC>", "https://slack.com/archives/CCASES/p"):
        assert part in slack(alert.text)
    assert isinstance(note, ThreadPost) and "自傷をほのめかしている" in slack(note.text)
    assert isinstance(checklist, ThreadPost) and all(n in slack(checklist.text) for n in ("110", "119", "189"))
    assert isinstance(root, RootUpdate) and "緊急" in slack(root.text)
    assert isinstance(answer, Ephemeral)
    assert not any(isinstance(d, LinePush | LineReply) for d in decision.deliveries)  # the child is told nothing
    assert decision.effects == (
        core.MarkUrgent(CaseNumber(4)),
        core.Audit(CaseNumber(4), "UC", "escalate", "自傷をほのめかしている", ControlVia.COMMAND),
    )


def test_escalate_without_a_group_mentions_nobody(policy: Policy) -> None:
    plain = dataclasses.replace(policy, supervisor_group="")
    alert = decide(request("escalate", "4 心配"), a_case(), plain).deliveries[0]
    assert isinstance(alert, ChannelPost) and "<!" not in slack(alert.text)


def test_a_closed_case_can_still_be_escalated(policy: Policy) -> None:
    decision = decide(
        request("escalate", "4", via="button", reason="終了後に気になる"), a_case(status=CaseStatus.CLOSED), policy
    )
    assert core.MarkUrgent(CaseNumber(4)) in decision.effects


# --- block and unblock -------------------------------------------------------------------


def test_block_closes_the_case_and_shows_who_when_and_why(policy: Policy) -> None:
    decision = decide(request("block", "4 無関係な投稿の連続", user="US"), a_case(), policy)
    note, root, answer = decision.deliveries
    assert isinstance(note, ThreadPost) and "<@US>" in slack(note.text) and "無関係な投稿の連続" in slack(note.text)
    assert "12/01 14:00" in slack(note.text)
    assert isinstance(root, RootUpdate) and "ブロック中" in slack(root.text) and "unblock" in root.buttons
    assert isinstance(answer, Ephemeral)
    assert CHILD not in slack(note.text) + slack(root.text) + slack(answer.text)  # the LINE user ID never reaches Slack
    assert decision.effects == (
        core.BlockChild(CaseNumber(4), SlackUserId("US"), "無関係な投稿の連続", NOW),
        core.CloseCase(CaseNumber(4), core.CloseReason.BLOCKED, by=SlackUserId("US")),
        core.Audit(CaseNumber(4), "US", "block", "無関係な投稿の連続", ControlVia.COMMAND),
    )


def test_blocking_from_an_earlier_case_also_closes_the_open_one(policy: Policy) -> None:
    earlier = a_case(number=2, status=CaseStatus.CLOSED)
    current = a_case(number=5)
    decision = controls.on_control(
        request("block", "2 迷惑行為", user="US"),
        earlier,
        policy,
        roster=ROSTER,
        block=None,
        open_cases=[],
        now=NOW,
        current=current,
    )
    assert core.CloseCase(CaseNumber(5), core.CloseReason.BLOCKED, by=SlackUserId("US")) in decision.effects
    assert not any(isinstance(e, core.CloseCase) and e.number == 2 for e in decision.effects)  # already closed
    assert {d.case for d in decision.deliveries if isinstance(d, ThreadPost)} == {2, 5}


def test_blocking_twice_or_unblocking_the_unblocked_changes_nothing(policy: Policy) -> None:
    block = Block(case=CaseNumber(4), by=SlackUserId("US"), at=NOW, reason="x")
    again = decide(request("block", "4 again", user="UG"), a_case(), policy, block=block)
    assert "すでにブロック" in slack(only_ephemeral(again).text) and again.effects == ()
    nothing = decide(request("unblock", "4", user="US"), a_case(), policy)
    assert "ブロックされていません" in slack(only_ephemeral(nothing).text) and nothing.effects == ()


def test_unblock_lifts_the_block(policy: Policy) -> None:
    case = a_case(status=CaseStatus.CLOSED, blocked=True, blocked_count=3)
    decision = decide(
        request("unblock", "4", user="UG"), case, policy, block=Block(CaseNumber(4), SlackUserId("US"), NOW, "x")
    )
    note, root, _ = decision.deliveries
    assert isinstance(note, ThreadPost) and "<@UG>" in slack(note.text)
    assert isinstance(root, RootUpdate) and "ブロック中" not in slack(root.text)
    assert decision.effects[0] == core.UnblockChild(CaseNumber(4), shown_on=(CaseNumber(4),))


def test_a_blocked_childs_message_is_counted_not_kept(policy: Policy) -> None:
    case = a_case(status=CaseStatus.CLOSED, blocked=True, blocked_count=2)
    decision = core.on_blocked_message(child("またきたよ"), case, policy)
    (root,) = decision.deliveries
    assert isinstance(root, RootUpdate) and "受信 3 件" in slack(root.text) and "またきたよ" not in slack(root.text)
    assert decision.effects == (core.CountBlockedMessage(CaseNumber(4)),)
    quiet = core.on_blocked_message(child("x"), dataclasses.replace(case, blocked_count=11), policy)
    assert quiet.deliveries == ()  # past ten, the root is updated every tenth message only


def test_risk_words_from_a_blocked_child_still_reach_the_supervisors(policy: Policy) -> None:
    case = a_case(status=CaseStatus.CLOSED, blocked=True, blocked_count=40)
    decision = core.on_blocked_message(child("もう死にたい"), case, policy)
    (alert,) = decision.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and "死にたい" not in slack(alert.text)
    assert core.MarkBlockedRisk(CaseNumber(4)) in decision.effects
    told = dataclasses.replace(case, blocked_risk=True)  # once per block, not once per message
    assert core.on_blocked_message(child("死にたい"), told, policy).deliveries == ()


# --- hold and /cases ---------------------------------------------------------------------


def test_hold_stops_the_automatic_close(policy: Policy) -> None:
    case = a_case(counsellor="UC")
    by_command = decide(request("hold", "4"), case, policy)
    note, root, answer = by_command.deliveries
    assert isinstance(note, ThreadPost) and "<@UC>" in slack(note.text)
    assert isinstance(root, RootUpdate) and "hold" not in root.buttons and "自動終了停止中" in slack(root.text)
    assert isinstance(answer, Ephemeral) and answer.user == "UC" and "#4" in slack(answer.text)
    assert by_command.effects == (
        core.HoldCase(CaseNumber(4)),
        core.Audit(CaseNumber(4), "UC", "hold", "", ControlVia.COMMAND),
    )
    by_button = decide(request("hold", "4", via="button"), case, policy)
    assert len(by_button.deliveries) == 2  # the thread note is the answer
    again = decide(request("hold", "4"), dataclasses.replace(case, hold=True), policy)
    assert again.effects == () and isinstance(again.deliveries[0], Ephemeral)


def test_cases_lists_open_cases_with_state_wait_and_counsellor(policy: Policy) -> None:
    waiting = a_case(number=7)
    answered = a_case(number=5, counsellor="UC", counsellor_since=NOW - 300)
    answer = only_ephemeral(decide(request("cases", ""), None, policy, open_cases=[waiting, answered]))
    lines = slack(answer.text).splitlines()
    assert "2 件" in lines[0]
    assert lines[1].startswith("• #5") and "待ち 5分" in lines[1] and "<@UC>" in lines[1]
    assert lines[2].startswith("• #7") and "待ち 10分" in lines[2] and "なし" in lines[2]
    empty = only_ephemeral(decide(request("cases", ""), None, policy))
    assert "ありません" in slack(empty.text)


def test_cases_shows_each_state_and_who_answered(policy: Policy) -> None:
    fresh = dataclasses.replace(a_case(number=8), opened_at=NOW)
    answered = a_case(number=5, counsellor="UC", counsellor_since=NOW + 3000)  # opened at NOW - 600
    lines = slack(
        only_ephemeral(decide(request("cases", ""), None, policy, open_cases=[fresh, answered])).text
    ).splitlines()
    assert lines[1].endswith("待ち 60分  担当: <@UC>")  # an hour before the first answer
    assert slack(core.state_text(answered, policy)) in lines[1]
    assert lines[2].endswith("待ち 0分  担当: なし")  # just arrived
    assert slack(core.state_text(fresh, policy)) in lines[2]


def test_an_unknown_action_changes_nothing(policy: Policy) -> None:
    assert decide(request("frobnicate", "4"), a_case(), policy) == core.NOTHING
    refused = decide(request("frobnicate", "4", user="UOUTSIDER"), a_case(), policy)
    assert refused.effects == (
        core.Audit(
            CaseNumber(4), "UOUTSIDER", "refused:frobnicate", "not a member of the case channel", ControlVia.COMMAND
        ),
    )


@pytest.mark.parametrize("via", ["command", "button"])
def test_a_refusal_names_the_case_and_answers_where_it_was_asked(policy: Policy, via: str) -> None:
    closed = a_case(status=CaseStatus.CLOSED)
    block = Block(case=CaseNumber(4), by=SlackUserId("US"), at=NOW, reason="x")
    where = None if via == "command" else 4  # a button's answer shows in the case's thread
    for action, case, kw, text in [
        ("hold", closed, {}, "相談 #4 は開いていません"),
        ("hold", a_case(hold=True), {}, "相談 #4 の自動終了を止めました"),
        ("close", closed, {}, "相談 #4 はすでに終了しています"),
        ("block", a_case(), {"block": block}, "相談 #4 の相談者はすでにブロック"),
        ("unblock", a_case(), {}, "相談 #4 の相談者はブロックされていません"),
    ]:
        asked = request(action, "4 理由" if via == "command" else "4", user="US", via=via, reason="理由")
        answer = only_ephemeral(decide(asked, case, policy, **kw))  # type: ignore[arg-type]
        assert slack(answer.text).startswith(text) and answer.case == where, action


def test_close_without_a_memo_and_the_closed_root(policy: Policy) -> None:
    decision = decide(request("close", "4"), a_case(counsellor="UC"), policy)
    push, note, root, _ = decision.deliveries
    assert isinstance(push, LinePush) and push.case == 4  # a refused push is reported in the case's thread
    assert isinstance(note, ThreadPost) and slack(note.text) == policy.render("close_note", user="<@UC>", memo="")
    assert isinstance(root, RootUpdate) and root.buttons == ("escalate",)
    assert "終了（<@UC> が終了、14:00）" in slack(root.text)  # closed now (it opened at 13:50), and by whom


def test_the_escalation_note_names_who_escalated(policy: Policy) -> None:
    note = decide(request("escalate", "4 心配"), a_case(), policy).deliveries[1]
    assert isinstance(note, ThreadPost) and slack(note.text) == policy.render(
        "escalation_note", user="<@UC>", reason="心配"
    )


def test_a_block_note_and_the_blocked_root(policy: Policy) -> None:
    # Blocked once before and unblocked: the count on the root starts again.
    case = a_case(blocked_count=3)
    note, root, _ = decide(request("block", "4 迷惑行為", user="US"), case, policy).deliveries
    assert isinstance(note, ThreadPost)
    assert slack(note.text) == policy.render("block_note", user="<@US>", at="12/01 14:00", reason="迷惑行為")
    assert isinstance(root, RootUpdate) and root.buttons == ("escalate", "unblock")
    assert "終了（ブロック、14:00）" in slack(root.text) and "受信 0 件" in slack(root.text)


def test_blocking_from_an_earlier_case_shows_the_open_one_closed(policy: Policy) -> None:
    decision = controls.on_control(
        request("block", "2 迷惑行為", user="US"),
        a_case(number=2, status=CaseStatus.CLOSED, closed_at=NOW - 86400),
        policy,
        roster=ROSTER,
        block=None,
        open_cases=[],
        now=NOW,
        current=a_case(number=5),
    )
    (root,) = [d for d in decision.deliveries if isinstance(d, RootUpdate) and d.case == 5]
    assert root.buttons == ("escalate",) and "終了（ブロック、14:00）" in slack(root.text)


def test_unblocking_from_another_case_refreshes_the_blocking_cases_root(policy: Policy) -> None:
    blocking = a_case(number=2, status=CaseStatus.CLOSED, blocked=True, blocked_count=3)
    decision = controls.on_control(
        request("unblock", "5", user="US"),
        a_case(number=5, status=CaseStatus.CLOSED),
        policy,
        roster=ROSTER,
        block=Block(case=CaseNumber(2), by=SlackUserId("US"), at=NOW, reason="x"),
        open_cases=[],
        now=NOW,
        blocked_from=blocking,
    )
    roots = [d for d in decision.deliveries if isinstance(d, RootUpdate)]
    assert [r.case for r in roots] == [5, 2]
    assert "ブロック中" not in slack(roots[1].text) and "unblock" not in roots[1].buttons
    alone = controls.on_control(
        request("unblock", "2", user="US"),
        blocking,
        policy,
        roster=ROSTER,
        block=Block(case=CaseNumber(2), by=SlackUserId("US"), at=NOW, reason="x"),
        open_cases=[],
        now=NOW,
        blocked_from=blocking,
    )
    assert [d.case for d in alone.deliveries if isinstance(d, RootUpdate)] == [2]  # one update, not two


@pytest.mark.parametrize(
    ("req", "number"),
    [
        (request("close", "12 学校と連携"), 12),
        (request("close", "＃１２\u3000理由"), 12),
        (request("close", "理由 12"), None),  # the number comes first
        (request("close", "12", via="button"), 12),  # a button carries the bare number
        (request("close", "12 13", via="button"), None),
        (request("close", "12", via="shortcut", thread_ts="1700000000.000100"), None),  # names a thread instead
    ],
)
def test_the_case_number_a_request_names(req: ControlRequested, number: int | None) -> None:
    assert controls.requested_number(req) == number


def test_command_text_splits_on_any_space() -> None:
    assert controls.split_command("１２\u3000理由 です") == ("１２", "理由 です")
    assert controls.split_command("  ") == ("", "")


# --- risk words --------------------------------------------------------------------------


def child(text: str | None, *, event_id: str = "ev1", media: Media | None = None) -> ChildMessage:
    return ChildMessage(
        child_id=LineUserId(CHILD), event_id=event_id, timestamp_ms=0, reply_token="rt", text=text, media=media
    )


@pytest.mark.parametrize(
    "text",
    [
        "死にたい",
        "ｼﾆﾀｲ",
        "しにたくなる",
        "死 に た い…",
        "もう消えたい",
        "キエタイ",
        "自殺",
        "殺されるかも",
        "リスカしちゃった",
        "リストカット",
        "手首を切った",
        "飛び降りようかな",
        "オーバードーズ",
    ],
)
def test_risk_words_and_their_variants_match(policy: Policy, text: str) -> None:
    assert is_risky(text, policy.safety)


@pytest.mark.parametrize("text", ["今日は楽しかった", "消しゴムなくした", "しかし", "リスクがある", None, ""])
def test_ordinary_messages_do_not_match(policy: Policy, text: str | None) -> None:
    assert not is_risky(text, policy.safety)


def test_normalisation() -> None:
    assert normalise("ｼﾆﾀｲ!! 😢") == "しにたい"
    assert normalise("オーバー\u200bドーズ") == "おーばーどーず"
    assert normalise("ＯＤ したい") == "odしたい"  # full-width latin letters, folded to lower case


def test_a_risky_message_marks_the_case_urgent_once(policy: Policy) -> None:
    case = a_case()
    decision = core.on_child_message(child("死にたい"), case, policy, now=NOW, created=False)
    post, alert, note, checklist, root = decision.deliveries
    assert isinstance(post, ThreadPost) and post.role == "child"
    assert isinstance(note, ThreadPost) and note.role == "note" and "自動検知" in slack(note.text)
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and "自動検知" in slack(alert.text)
    assert "死にたい" not in slack(alert.text)  # the words stay in the thread
    assert isinstance(checklist, ThreadPost) and "189" in slack(checklist.text)
    assert isinstance(root, RootUpdate) and "緊急" in slack(root.text)
    assert "自殺念慮" in slack(alert.text) and "自殺念慮" in slack(note.text)  # the category, not the words
    assert core.MarkUrgent(CaseNumber(4)) in decision.effects and core.Audit(
        CaseNumber(4), "auto", "risk", "risk words in a message: 自殺念慮"
    ) in (decision.effects)
    assert core.NoteRisks(CaseNumber(4), frozenset({"suicidal"})) in decision.effects
    again = core.on_child_message(
        child("死にたい"),
        dataclasses.replace(case, urgent=True, risks=frozenset({"suicidal"})),
        policy,
        now=NOW,
        created=False,
    )
    assert [type(d) for d in again.deliveries] == [ThreadPost]


def test_a_new_category_alerts_again_without_a_second_checklist(policy: Policy) -> None:
    seen = a_case(urgent=True, risks=frozenset({"suicidal"}))
    decision = core.on_child_message(child("薬を全部飲んだ"), seen, policy, now=NOW, created=False)
    post, alert, note = decision.deliveries  # no checklist, no root update: the case is urgent already
    assert isinstance(post, ThreadPost) and post.role == "child"
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and "過量服薬" in slack(alert.text)
    assert "自殺念慮" not in slack(alert.text) and "全部飲んだ" not in slack(alert.text)
    assert isinstance(note, ThreadPost) and note.role == "note" and "過量服薬" in slack(note.text)
    assert core.NoteRisks(CaseNumber(4), frozenset({"suicidal", "overdose"})) in decision.effects
    assert core.MarkUrgent(CaseNumber(4)) not in decision.effects


def test_an_escalated_case_still_hears_of_the_first_risk_words(policy: Policy) -> None:
    decision = core.on_child_message(child("もう死にたい"), a_case(urgent=True), policy, now=NOW, created=False)
    alerts = [d for d in decision.deliveries if isinstance(d, ChannelPost)]
    assert len(alerts) == 1 and "自殺念慮" in slack(alerts[0].text)


def test_a_watch_category_notes_the_thread_for_the_counsellor_only(policy: Policy) -> None:
    watch = core.RiskCategory("worry", "気がかり", core.RiskLevel.WATCH, ("(眠|ねむ)れない",), _re2("(眠|ねむ)れない"))
    watching = dataclasses.replace(policy, safety=dataclasses.replace(policy.safety, categories=(watch,)))
    decision = core.on_child_message(child("最近眠れない"), a_case(), watching, now=NOW, created=False)
    post, note = decision.deliveries
    assert isinstance(post, ThreadPost) and post.role == "child"
    assert isinstance(note, ThreadPost) and note.role == "note" and "気がかり" in slack(note.text)
    assert note.text == watching.render_parts("risk_watch_note", category="気がかり")
    assert core.MarkUrgent(CaseNumber(4)) not in decision.effects
    assert core.NoteRisks(CaseNumber(4), frozenset({"worry"})) in decision.effects


def _re2(expression: str) -> core.Matcher:
    from bridge.config.safety import compile_expressions

    return compile_expressions((expression,))


def test_out_of_hours_a_risky_message_also_gets_the_crisis_lines(policy: Policy) -> None:
    decision = core.on_child_message(child("消えたい"), a_case(), policy, now=NIGHT, created=True)
    (reply,) = [d for d in decision.deliveries if isinstance(d, LineReply)]
    assert len(reply.texts) == 2 and "受付時間外" in reply.texts[0] and "0120-0-78310" in reply.texts[1]
    told = next(e for e in decision.effects if isinstance(e, core.MarkClosedNotice)).period
    assert told.endswith("+crisis")
    period = told.removesuffix("+crisis")
    # Once in a closed period: more risk words that night get no second copy.
    again = core.on_child_message(
        child("しにたい", event_id="ev2"),
        a_case(urgent=True),
        policy,
        now=NIGHT + 60,
        created=False,
        closed_notice=told,
    )
    assert not any(isinstance(d, LineReply) for d in again.deliveries)
    # Told about the closed period earlier without them (and already urgent by an escalation):
    # the crisis lines come on their own.
    later = core.on_child_message(
        child("しにたい", event_id="ev3"),
        a_case(urgent=True),
        policy,
        now=NIGHT + 60,
        created=False,
        closed_notice=period,
    )
    (reply,) = [d for d in later.deliveries if isinstance(d, LineReply)]
    assert reply.texts == (policy.render("crisis_lines"),)
    assert (
        core.MarkClosedNotice(
            LineUserId(CHILD), told, next(e.until for e in later.effects if isinstance(e, core.MarkClosedNotice))
        )
        in later.effects
    )
    ordinary = core.on_child_message(child("ねむい"), a_case(), policy, now=NIGHT, created=False, closed_notice=period)
    assert not any(isinstance(d, LineReply) for d in ordinary.deliveries)


# --- floods ------------------------------------------------------------------------------

STICKER = Media(type="sticker", keywords=("ok",))


def test_flood_limits() -> None:
    assert not is_flood(Recent(5, 5), sticker=True, max_messages=20, max_stickers=5)
    assert is_flood(Recent(6, 6), sticker=True, max_messages=20, max_stickers=5)
    assert not is_flood(Recent(6, 6), sticker=False, max_messages=20, max_stickers=5)  # text after stickers passes
    assert is_flood(Recent(21, 0), sticker=False, max_messages=20, max_stickers=5)
    assert not is_flood(Recent(20, 0), sticker=False, max_messages=20, max_stickers=5)  # "more than" the limit
    assert not is_flood(Recent(99, 99), sticker=True, max_messages=0, max_stickers=0)  # 0 is off


def test_the_sixth_sticker_starts_a_flood_cool_down(policy: Policy) -> None:
    decision = core.on_child_message(
        child(None, media=STICKER), a_case(), policy, now=NOW, created=False, recent=Recent(6, 6)
    )
    kinds = [type(d) for d in decision.deliveries]
    assert ThreadPost in kinds and LineReply in kinds and ChannelPost in kinds and RootUpdate in kinds
    assert not any(isinstance(d, ThreadPost) and d.role == "child" for d in decision.deliveries)  # deferred, not posted
    until = NOW + policy.flood_cooldown_seconds
    assert core.StartFlood(CaseNumber(4), until) in decision.effects
    assert (
        core.ScheduleTimer(TimerKind.FLOOD_RELEASE, until, case=CaseNumber(4), instant=int(until)) in decision.effects
    )
    assert core.DeferMessage(CaseNumber(4), None) in decision.effects  # a sticker is counted, not kept
    alert = next(d for d in decision.deliveries if isinstance(d, ChannelPost))
    assert alert.target == "supervisors" and "/block 4" in slack(alert.text)


def test_during_a_cool_down_messages_are_deferred_quietly_but_risk_words_still_alert(policy: Policy) -> None:
    flooding = a_case(flood_until=NOW + 100)
    quiet = core.on_child_message(child("あのね"), flooding, policy, now=NOW, created=False, recent=Recent(30, 0))
    assert quiet.deliveries == ()
    assert core.DeferMessage(CaseNumber(4), "あのね") in quiet.effects
    risky = core.on_child_message(child("死にたい"), flooding, policy, now=NOW, created=False)
    assert any(isinstance(d, ChannelPost) and d.target == "supervisors" for d in risky.deliveries)
    # Never deferred: the alert sends the supervisors to the thread to read it.
    assert ThreadPost(case=CaseNumber(4), text=(ChildWords("死にたい"),), role=PostRole.CHILD) in risky.deliveries
    assert not any(isinstance(e, core.DeferMessage) for e in risky.effects)
    # The cool-down lasts until its timer ends it, even past its time, so order is kept.
    late = core.on_child_message(child("まだ？"), flooding, policy, now=NOW + 500, created=False)
    assert core.DeferMessage(CaseNumber(4), "まだ？") in late.effects


def test_the_cool_down_ends_and_what_was_deferred_reaches_the_thread(policy: Policy) -> None:
    flooding = a_case(flood_until=NOW)
    assert (
        core.on_flood_timer(int(NOW) - 300, flooding, Deferred(("あのね",), 0), policy) == core.NOTHING
    )  # an earlier cool-down's
    decision = core.on_flood_timer(int(NOW), flooding, Deferred(("あのね", "きいて"), 12), policy)
    note, texts, root = decision.deliveries
    assert isinstance(note, ThreadPost) and "14 件" in slack(note.text) and "12 件" in slack(note.text)
    assert isinstance(texts, ThreadPost) and texts.role == "child" and slack(texts.text) == "あのね\nきいて"
    assert isinstance(root, RootUpdate) and "保留中" not in slack(root.text)
    assert decision.effects == (core.ReleaseFlood(CaseNumber(4)),)
    assert core.on_flood_timer(int(NOW), a_case(), Deferred(), policy) == core.NOTHING  # already ended


def test_root_buttons_follow_the_state() -> None:
    assert core.root_buttons(a_case()) == ("hold", "close", "escalate", "block")
    assert core.root_buttons(a_case(hold=True)) == ("close", "escalate", "block")
    assert core.root_buttons(a_case(status=CaseStatus.CLOSED)) == ("escalate",)
    assert core.root_buttons(a_case(status=CaseStatus.CLOSED, blocked=True)) == ("escalate", "unblock")


def test_a_cool_down_running_past_closing_still_tells_the_child_the_service_is_closed(policy: Policy) -> None:
    flooding = a_case(flood_until=NIGHT + 100)
    decision = core.on_child_message(child("ねえ"), flooding, policy, now=NIGHT, created=False)
    assert (
        core.DeferMessage(CaseNumber(4), "ねえ") in decision.effects
        and core.NoteClosedArrival(CaseNumber(4), NIGHT) in decision.effects
    )
    (reply,) = [d for d in decision.deliveries if isinstance(d, LineReply)]
    assert "受付時間外" in reply.texts[0]
    assert not any(isinstance(d, ThreadPost) and d.role == "child" for d in decision.deliveries)


def test_after_hours_with_a_counsellor_still_talking_risk_words_get_the_crisis_lines_once(policy: Policy) -> None:
    live = a_case(counsellor="UC", last_counsellor_at=NIGHT - 120)
    decision = core.on_child_message(child("死にたい"), live, policy, now=NIGHT, created=False)
    (reply,) = [d for d in decision.deliveries if isinstance(d, LineReply)]
    assert reply.texts == (policy.render("crisis_lines"),)  # no closed reply: the conversation goes on
    again = core.on_child_message(
        child("死にたい", event_id="ev2"), dataclasses.replace(live, urgent=True), policy, now=NIGHT + 30, created=False
    )
    assert not any(isinstance(d, LineReply) for d in again.deliveries)


def test_joins_and_leaves_of_the_case_channel_change_the_roster() -> None:
    from bridge.core.events import MemberChanged

    left = controls.on_member_changed(MemberChanged(CHANNEL, SlackUserId("UC"), joined=False), channel=CHANNEL)
    assert left.effects == (core.ChangeMember(SlackUserId("UC"), False),)
    elsewhere = controls.on_member_changed(MemberChanged("COTHER", SlackUserId("UC"), joined=True), channel=CHANNEL)
    assert elsewhere == core.NOTHING


# --- what the safety net says, exactly ---------------------------------------------------

LINK = "https://slack.com/archives/CCASES/p1700000000000100"


def test_a_flood_cool_down_in_full(policy: Policy) -> None:
    decision = core.on_child_message(
        child("まだいる？"), a_case(), policy, now=NOW, created=False, recent=Recent(21, 0)
    )
    until = NOW + policy.flood_cooldown_seconds  # 14:05
    note, alert, notice, root = decision.deliveries
    assert note == ThreadPost(
        case=CaseNumber(4), text=policy.render_parts("flood_note", until="14:05"), role=PostRole.NOTE
    )
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors"
    assert slack(alert.text) == policy.render("flood_alert", case=4, until="14:05", link=LINK)
    assert notice == LineReply(
        to=LineUserId(CHILD),
        reply_token="rt",
        event_ms=0,
        texts=(policy.render("flood_notice_child"),),
        retry_key=core.retry_key("flood:ev1"),
        case=CaseNumber(4),
    )
    assert isinstance(root, RootUpdate) and policy.render("state_flood", until="14:05") in slack(root.text)
    assert decision.effects == (
        core.NoteChildMessage(CaseNumber(4), NOW),
        core.StartFlood(CaseNumber(4), until),
        core.ScheduleTimer(TimerKind.FLOOD_RELEASE, until, case=CaseNumber(4), instant=int(until)),
        core.Audit(CaseNumber(4), "auto", "flood", "21 messages in the window"),
        core.DeferMessage(CaseNumber(4), "まだいる？"),
    )


def test_risk_words_that_tip_a_flood_are_posted_first_and_alerted(policy: Policy) -> None:
    decision = core.on_child_message(child("死にたい"), a_case(), policy, now=NOW, created=False, recent=Recent(21, 0))
    post, flood_note, *_ = decision.deliveries
    assert post == ThreadPost(
        case=CaseNumber(4), text=(ChildWords("死にたい"),), role=PostRole.CHILD
    )  # never deferred, before the note
    assert isinstance(flood_note, ThreadPost) and flood_note.role == "note"
    alerts = [d for d in decision.deliveries if isinstance(d, ChannelPost) and "自動検知" in slack(d.text)]
    assert [(alert.target, slack(alert.text)) for alert in alerts] == [
        (
            "supervisors",
            policy.render("risk_alert", mention="<!subteam^SSUPER> ", case=4, link=LINK, category="自殺念慮"),
        )
    ]
    assert decision.effects[0] == core.NoteChildMessage(CaseNumber(4), NOW)
    assert decision.effects[-3:] == (
        core.NoteRisks(CaseNumber(4), frozenset({"suicidal"})),
        core.MarkUrgent(CaseNumber(4)),
        core.Audit(CaseNumber(4), "auto", "risk", "risk words in a message: 自殺念慮"),
    )


def test_risk_words_from_a_blocked_child_alert_in_full(policy: Policy) -> None:
    case = a_case(status=CaseStatus.CLOSED, blocked=True, blocked_count=40)
    decision = core.on_blocked_message(child("もう死にたい"), case, policy)
    text = policy.render("blocked_risk_alert", mention="<!subteam^SSUPER> ", case=4, link=LINK, category="自殺念慮")
    (alert,) = decision.deliveries
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and slack(alert.text) == text
    assert decision.effects == (
        core.CountBlockedMessage(CaseNumber(4)),
        core.MarkBlockedRisk(CaseNumber(4)),
        core.Audit(CaseNumber(4), "auto", "risk", "risk words from a blocked account: 自殺念慮"),
    )


def test_a_blocked_childs_root_is_updated_for_the_first_ten_then_every_tenth(policy: Policy) -> None:
    updated = set()
    for before in range(30):
        case = a_case(status=CaseStatus.CLOSED, blocked=True, blocked_count=before)
        if core.on_blocked_message(child("x"), case, policy).deliveries:
            updated.add(before + 1)
    assert updated == {*range(1, 11), 20, 30}


def test_the_escalation_alert_without_a_group_starts_with_the_case(policy: Policy) -> None:
    plain = dataclasses.replace(policy, supervisor_group="")
    alert = decide(request("escalate", "4 心配"), a_case(), plain).deliveries[0]
    text = plain.render("escalation_alert", mention="", case=4, reason="心配", user="<@UC>", link=LINK)
    assert isinstance(alert, ChannelPost) and alert.target == "supervisors" and slack(alert.text) == text


@pytest.mark.parametrize("action", ["escalate", "block", "close"])
def test_a_typed_reason_or_memo_can_ping_nobody_and_fake_no_markup(policy: Policy, action: str) -> None:
    """What a counsellor types after the number reaches Slack as typed: `<!channel>` notifies
    nobody, and `<https://evil|link>` is no link."""
    typed = "<!channel> <@U999> <https://evil.example|見て> &"
    decision = decide(request(action, f"4 {typed}", user="US"), a_case(), policy)
    shown = [slack(d.text) for d in decision.deliveries if isinstance(d, ThreadPost | ChannelPost)]
    assert shown and any("&lt;!channel&gt; &lt;@U999&gt; &lt;https://evil.example|見て&gt; &amp;" in s for s in shown)
    for text in shown:
        assert "<!channel>" not in text and "<@U999>" not in text and "<https://evil" not in text


def test_an_apis_error_in_a_failure_note_is_shown_as_written(policy: Policy) -> None:
    push = LinePush(to=LineUserId(CHILD), texts=("x",), retry_key="k", case=CaseNumber(4))
    (note, *_) = core.after_line_failed(push, "bad <!here> request", policy)
    assert isinstance(note, ThreadPost) and "bad &lt;!here&gt; request" in slack(note.text)


def test_a_cool_down_keeps_at_most_its_limit_of_texts_and_counts_the_rest(policy: Policy) -> None:
    from bridge.core.rules.floods import MAX_DEFERRED_TEXTS

    flooding = a_case(flood_until=NOW + 100, deferred_texts=MAX_DEFERRED_TEXTS - 1)
    kept = core.on_child_message(child("まだ"), flooding, policy, now=NOW, created=False)
    assert core.DeferMessage(CaseNumber(4), "まだ") in kept.effects
    full = dataclasses.replace(flooding, deferred_texts=MAX_DEFERRED_TEXTS)
    counted = core.on_child_message(child("まだまだ"), full, policy, now=NOW, created=False)
    assert core.DeferMessage(CaseNumber(4), None, dropped=True) in counted.effects
    released = core.on_flood_timer(int(NOW + 100), flooding, Deferred(("a",), 0, 7), policy)
    notes = [slack(d.text) for d in released.deliveries if isinstance(d, ThreadPost) and d.role == "note"]
    assert any("7 件は保存していません" in n and f"{MAX_DEFERRED_TEXTS} 件" in n for n in notes)


def test_a_block_during_a_cool_down_drops_what_it_deferred(policy: Policy) -> None:
    decision = decide(request("block", "4 荒らし", user="US"), a_case(flood_until=NOW + 100), policy)
    assert core.ReleaseFlood(CaseNumber(4)) in decision.effects
    assert not any(isinstance(d, ThreadPost) and d.role == "child" for d in decision.deliveries)  # nothing posted
