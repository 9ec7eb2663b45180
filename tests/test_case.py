"""The core's decisions, as pure functions: no server, no Redis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bridge import core
from bridge.adapters.slack.markup import slack_to_plain
from bridge.config.policy_file import load_policy
from bridge.core.case import Case, CaseAction, CaseStatus, CloseReason
from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    Ephemeral,
    LinePush,
    LineReply,
    PostRole,
    Reaction,
    RootUpdate,
    ThreadPost,
    from_payload,
    to_payload,
)
from bridge.core.events import ChildFollowed, ChildMessage, Media, ThreadDelete, ThreadEdit, ThreadMessage, TimerKind
from bridge.core.ids import CaseNumber, LineUserId, MessageTs, SlackUserId, ThreadTs
from bridge.core.parts import ChildWords, GroupMention, OnDuty, ThreadLink, UserMention
from bridge.core.policy import Policy
from bridge.core.rules.floods import Deferred
from bridge.core.schedule.model import Schedule
from tests.slack_text import slack

CHANNEL = "CCASES"
CHILD = "Uchild-core"


NOW = 1_800_000_100.0


@pytest.fixture(scope="module")
def policy() -> Policy:
    """The shipped policy, open around the clock (the hours have tests of their own)."""
    shipped = load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")
    always = {
        day: ["00:00-24:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    return dataclasses.replace(shipped, schedule=Schedule.from_config(always, shipped.timezone))


def open_case(number: int = 7, **changes: object) -> Case:
    fields: dict[str, object] = {
        "number": number,
        "status": CaseStatus.OPEN,
        "child_id": CHILD,
        "opened_at": 1_800_000_000.0,
        "thread_ts": "1800000000.000100",
    }
    fields.update(changes)
    return Case(**fields)  # type: ignore[arg-type]


def reply(text: str, **changes: object) -> ThreadMessage:
    """A counsellor's thread message as the Slack adapter hands it to the core: text is what the
    counsellor typed in Slack's markup, converted to plain text."""
    fields: dict[str, object] = {
        "channel": CHANNEL,
        "ts": "1800000100.000200",
        "thread_ts": "1800000000.000100",
        "user": "UCOUNSEL",
        "text": slack_to_plain(text),
    }
    fields.update(changes)
    return ThreadMessage(**fields)  # type: ignore[arg-type]


def decide(message: ThreadMessage, case: Case | None, policy: Policy) -> core.Decision:
    return core.on_counsellor_message(message, case, policy, channel=CHANNEL, delivery_id="1-0", now=NOW)


def test_child_text_goes_to_the_thread_escaped(policy: Policy) -> None:
    message = ChildMessage(
        child_id=LineUserId(CHILD), event_id="e", timestamp_ms=0, reply_token=None, text="<!here> & hi"
    )
    decision = core.on_child_message(message, open_case(), policy, now=NOW, created=False)
    assert decision.deliveries == (
        ThreadPost(case=CaseNumber(7), text=(ChildWords("<!here> & hi"),), role=PostRole.CHILD),
    )
    assert slack(decision.deliveries[0].text) == "&lt;!here&gt; &amp; hi"
    assert not any(isinstance(e, core.CloseCase) for e in decision.effects)


def test_child_media_goes_to_the_thread_as_its_description(policy: Policy) -> None:
    image = ChildMessage(
        child_id=LineUserId(CHILD), event_id="e", timestamp_ms=0, reply_token=None, text=None, media=Media(type="image")
    )
    decision = core.on_child_message(image, open_case(), policy, now=NOW, created=False)
    assert decision.deliveries == (ThreadPost(case=CaseNumber(7), text=(ChildWords("[画像]"),), role=PostRole.CHILD),)
    custom = dataclasses.replace(policy, texts={**policy.texts, "media_sticker": "sticker"})
    sticker = dataclasses.replace(image, media=Media(type="sticker", keywords=("<!here>",)))
    shown = core.on_child_message(sticker, open_case(), custom, now=NOW, created=False).deliveries[0]
    assert isinstance(shown, ThreadPost) and slack(shown.text) == "[sticker: &lt;!here&gt;]"


def test_the_first_answer_makes_the_counsellor_and_updates_the_root(policy: Policy) -> None:
    decision = decide(reply("こんにちは"), open_case(), policy)
    push, root = decision.deliveries
    assert isinstance(push, LinePush) and isinstance(root, RootUpdate)
    assert "<@UCOUNSEL>" in slack(root.text) and "#7" in slack(root.text)
    silence = (
        core.ScheduleTimer(TimerKind.IDLE_WARNING, NOW + 480, case=CaseNumber(7), instant=int(NOW * 1000)),
        core.ScheduleTimer(TimerKind.IDLE_CLOSE, NOW + 600, case=CaseNumber(7), instant=int(NOW * 1000)),
    )
    assert decision.effects == (
        core.AssignCounsellor(CaseNumber(7), SlackUserId("UCOUNSEL"), NOW),
        core.NoteCounsellorReply(CaseNumber(7), NOW),
        *silence,
    )
    later = decide(reply("つづき"), open_case(counsellor="UCOUNSEL", counsellor_since=NOW), policy)
    assert later.effects == (core.NoteCounsellorReply(CaseNumber(7), NOW), *silence) and len(later.deliveries) == 1


def test_counsellor_reply_becomes_one_push(policy: Policy) -> None:
    answered = open_case(counsellor="UOTHER", counsellor_since=NOW)
    decision = decide(reply("こんにちは <https://example.org|案内>"), answered, policy)
    (push,) = decision.deliveries
    assert isinstance(push, LinePush)
    assert push.to == CHILD and push.texts == ("こんにちは 案内 (https://example.org)",)
    assert push.case == 7 and push.slack_ts == "1800000100.000200" and push.final_part


def test_retry_keys_are_stable_and_distinct(policy: Policy) -> None:
    long_text = "あ" * 30_000
    first = decide(reply(long_text), open_case(), policy).deliveries
    again = decide(reply(long_text), open_case(), policy).deliveries
    assert first == again  # a replayed event decides the same keys
    assert [len(p.texts) for p in first if isinstance(p, LinePush)] == [5, 1]
    assert len({p.retry_key for p in first if isinstance(p, LinePush)}) == 2
    assert [p.final_part for p in first if isinstance(p, LinePush)] == [False, True]


@pytest.mark.parametrize(
    "message",
    [
        reply("// メモ"),
        reply("   // 先頭の空白があってもメモ"),
        reply("／／ 学校に連絡予定"),  # typed in full width
        reply("\u3000\u200b//\u200d 見えない文字があってもメモ"),  # an ideographic space, zero-width characters
        reply("/\u200b/ 間に見えない文字"),
        reply("bot", bot_id="B1"),
        reply("bot", subtype="bot_message"),
        reply("joined", subtype="channel_join"),
        reply("root", thread_ts=None),
        reply("root itself", ts="1800000000.000100"),
        reply("other channel", channel="COTHER"),
        reply("no user", user=None),
        reply("<@U123>"),  # only a mention: nothing left to send
    ],
    ids=[
        "note",
        "note-indented",
        "note-full-width",
        "note-zero-width-before",
        "note-zero-width-inside",
        "bot-id",
        "bot-subtype",
        "join",
        "top-level",
        "root",
        "other-channel",
        "no-user",
        "mention-only",
    ],
)
def test_what_is_never_relayed(message: ThreadMessage, policy: Policy) -> None:
    assert decide(message, open_case(), policy) == core.NOTHING


def test_reply_in_a_thread_that_is_no_case_is_ignored(policy: Policy) -> None:
    assert decide(reply("hello"), None, policy) == core.NOTHING


def test_reply_in_a_closed_case_is_refused_privately(policy: Policy) -> None:
    closed = open_case(status=CaseStatus.CLOSED, closed_at=1_800_000_050.0)
    (ephemeral,) = decide(reply("まだいる？"), closed, policy).deliveries
    assert isinstance(ephemeral, Ephemeral)
    assert ephemeral.user == "UCOUNSEL" and "#7" in slack(ephemeral.text)


def test_edit_of_a_relayed_reply_leaves_a_note_but_an_unfurl_does_not(policy: Policy) -> None:
    before = reply("3時")
    edit = ThreadEdit(channel=CHANNEL, previous=before, current=reply("4時"))
    (note,) = core.on_counsellor_edit(edit, open_case(), policy, channel=CHANNEL).deliveries
    assert isinstance(note, ThreadPost) and note.role == "note"
    unfurl = ThreadEdit(channel=CHANNEL, previous=before, current=before)
    assert core.on_counsellor_edit(unfurl, open_case(), policy, channel=CHANNEL) == core.NOTHING
    note_edit = ThreadEdit(channel=CHANNEL, previous=reply("// a"), current=reply("// b"))
    assert core.on_counsellor_edit(note_edit, open_case(), policy, channel=CHANNEL) == core.NOTHING
    # Taking the prefix off a note by editing sends nothing, so the thread is told.
    unnoted = ThreadEdit(channel=CHANNEL, previous=reply("// 送る?"), current=reply("送る?"))
    (told,) = core.on_counsellor_edit(unnoted, open_case(), policy, channel=CHANNEL).deliveries
    assert isinstance(told, ThreadPost) and told.role == "note"


def test_delete_after_the_case_closed_of_a_reply_never_sent_is_silent(policy: Policy) -> None:
    closed = open_case(status=CaseStatus.CLOSED, closed_at=1_800_000_050.0)  # before the reply's ts
    deletion = ThreadDelete(channel=CHANNEL, previous=reply("送られていない"))
    assert core.on_counsellor_delete(deletion, closed, policy, channel=CHANNEL) == core.NOTHING
    (note,) = core.on_counsellor_delete(deletion, open_case(), policy, channel=CHANNEL).deliveries
    assert isinstance(note, ThreadPost)


def test_follow_and_unfollow(policy: Policy) -> None:
    follow = ChildFollowed(child_id=LineUserId(CHILD), event_id="ev1", timestamp_ms=5, reply_token="rt")
    (welcome,) = core.on_child_followed(follow, policy).deliveries
    assert isinstance(welcome, LineReply)
    assert welcome.reply_token == "rt" and policy.hotline in welcome.texts[0]
    decision = core.on_child_unfollowed(open_case(), policy, now=NOW)
    assert core.CloseCase(CaseNumber(7), CloseReason.UNFOLLOWED) in decision.effects
    root = decision.deliveries[1]
    assert isinstance(root, RootUpdate) and "相談者がブロック" in slack(root.text)
    assert isinstance(decision.deliveries[0], ThreadPost)
    assert core.on_child_unfollowed(None, policy, now=NOW) == core.NOTHING


def test_delivery_outcomes(policy: Policy) -> None:
    push = LinePush(to=LineUserId(CHILD), texts=("x",), retry_key="k", case=CaseNumber(7), slack_ts=MessageTs("1.2"))
    assert core.after_line_delivered(push) == (
        Reaction(case=CaseNumber(7), message_ts=MessageTs("1.2"), name="white_check_mark"),
    )
    first_part = LinePush(
        to=LineUserId(CHILD),
        texts=("x",),
        retry_key="k",
        case=CaseNumber(7),
        slack_ts=MessageTs("1.2"),
        final_part=False,
    )
    assert core.after_line_delivered(first_part) == ()
    failed = core.after_line_failed(push, "LINE refused the message (400)", policy)
    assert failed[0] == Reaction(case=CaseNumber(7), message_ts=MessageTs("1.2"), name="warning")
    assert isinstance(failed[1], ThreadPost) and "400" in slack(failed[1].text)


def test_root_text_shows_the_number_and_local_time(policy: Policy) -> None:
    text = slack(core.root_text(open_case(number=12, opened_at=1_800_000_000.0), policy))
    assert "#12" in text
    assert "01/15(金) 17:00" in text  # 2027-01-15 08:00 UTC is 17:00 in Tokyo


@pytest.mark.parametrize(
    "delivery",
    [
        ThreadPost(case=CaseNumber(1), text=(ChildWords("t <!here>"),), role=PostRole.CHILD),
        Reaction(case=CaseNumber(1), message_ts=MessageTs("1.1"), name="warning"),
        Ephemeral(
            case=CaseNumber(1),
            user=SlackUserId("U"),
            text=("t ", UserMention(SlackUserId("U1")), " ", GroupMention("S1")),
        ),
        LinePush(
            to=LineUserId("U"),
            texts=("a", "b"),
            retry_key="k",
            case=CaseNumber(1),
            slack_ts=MessageTs("1.1"),
            final_part=False,
        ),
        LineReply(to=LineUserId("U"), reply_token=None, event_ms=1, texts=("a",), retry_key="k"),
        RootUpdate(case=CaseNumber(1), text=("t",), buttons=(CaseAction.HOLD, CaseAction.CLOSE)),
        ChannelPost(
            text=(OnDuty(), " t ", ThreadLink(CaseNumber(1), ThreadTs("1.1")), ThreadLink(CaseNumber(2), None)),
            target=ChannelTarget.SUPERVISORS,
        ),
    ],
)
def test_deliveries_round_trip_through_json(delivery: object) -> None:
    import json

    payload = json.loads(json.dumps(to_payload(delivery)))  # type: ignore[arg-type]
    assert from_payload(payload) == delivery


def test_a_delivery_queued_with_a_rendered_text_still_reads() -> None:
    # Queued before texts had parts: its text was already Slack's, and is posted as it is.
    queued = {"kind": "thread_post", "case": 1, "text": "&lt;!here&gt; <@U1>", "role": "child"}
    delivery = from_payload(queued)
    assert delivery == ThreadPost(case=CaseNumber(1), text=("&lt;!here&gt; <@U1>",), role=PostRole.CHILD)
    assert slack(delivery.text) == "&lt;!here&gt; <@U1>"


def test_unknown_delivery_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown delivery kind"):
        from_payload({"kind": "fax"})
    with pytest.raises(ValueError, match="unknown delivery kind None"):
        from_payload({"case": 1, "text": "t"})


@pytest.mark.parametrize(
    ("media", "shown"),
    [
        (Media(type="file", file_name="宿題.pdf"), "[file: 宿題.pdf]"),
        (Media(type="video", duration_ms=12_000), "[video 0:12]"),
        (Media(type="location", title="駅前 <公園>"), "[place: 駅前 &lt;公園&gt;]"),
        (None, "[other: unknown]"),  # neither text nor media: said so, in the policy's words
    ],
)
def test_media_is_described_with_its_details_in_the_policys_words(
    policy: Policy, media: Media | None, shown: str
) -> None:
    words = {"media_file": "file", "media_video": "video", "media_location": "place", "media_unknown": "other"}
    custom = dataclasses.replace(policy, texts={**policy.texts, **words})
    message = ChildMessage(
        child_id=LineUserId(CHILD), event_id="e", timestamp_ms=0, reply_token=None, text=None, media=media
    )
    post = core.on_child_message(message, open_case(), custom, now=NOW, created=False).deliveries[0]
    assert post == ThreadPost(
        case=CaseNumber(7), text=(ChildWords(core.describe_media(media, custom)),), role=PostRole.CHILD
    )
    assert slack(post.text) == shown  # as Slack shows it: the child's title escaped


def test_unfollow_notes_the_case_and_shows_when_it_closed(policy: Policy) -> None:
    note, root = core.on_child_unfollowed(open_case(), policy, now=NOW).deliveries
    assert note == ThreadPost(case=CaseNumber(7), text=policy.render_parts("unfollow_note", case=7), role=PostRole.NOTE)
    assert isinstance(root, RootUpdate) and "終了（相談者がブロック、17:01）" in slack(root.text)  # opened 17:00


def test_the_first_answer_shows_since_when_on_the_root(policy: Policy) -> None:
    root = decide(reply("こんにちは"), open_case(), policy).deliveries[1]
    assert isinstance(root, RootUpdate) and "対応中: <@UCOUNSEL>（17:01から）" in slack(root.text)


def test_a_reply_in_a_closed_case_is_answered_in_its_thread(policy: Policy) -> None:
    closed = open_case(status=CaseStatus.CLOSED, closed_at=1_800_000_050.0)
    text = policy.render_parts("closed_case_ephemeral", case=7)
    assert decide(reply("まだいる？"), closed, policy).deliveries == (
        Ephemeral(case=CaseNumber(7), user=SlackUserId("UCOUNSEL"), text=text),
    )


def test_no_link_to_a_thread_that_is_not_there_yet() -> None:
    assert core.thread_link(open_case(thread_ts=None)) == ThreadLink(CaseNumber(7), None)
    assert slack((core.thread_link(open_case(thread_ts=None)),)) == ""
    assert core.thread_link(open_case()) == ThreadLink(CaseNumber(7), ThreadTs("1800000000.000100"))
    assert slack((core.thread_link(open_case()),)) == "https://slack.com/archives/CCASES/p1800000000000100"


def test_deferred_messages_are_grouped_up_to_3000_characters_a_post(policy: Policy) -> None:
    flooding = open_case(flood_until=NOW)
    until = int(NOW)
    fits = core.on_flood_timer(until, flooding, Deferred(("a" * 1500, "b" * 1499), 0), policy).deliveries
    assert [slack(d.text) for d in fits if isinstance(d, ThreadPost) and d.role == "child"] == [
        "a" * 1500 + "\n" + "b" * 1499
    ]
    over = core.on_flood_timer(until, flooding, Deferred(("a" * 1500, "b" * 1500, "c"), 2), policy).deliveries
    assert [slack(d.text) for d in over if isinstance(d, ThreadPost) and d.role == "child"] == [
        "a" * 1500,
        "b" * 1500 + "\nc",
    ]
    assert over[0] == ThreadPost(
        case=CaseNumber(7), text=policy.render_parts("flood_released_note", messages=5, stickers=2), role=PostRole.NOTE
    )
