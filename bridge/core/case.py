"""A case: one consultation and its Slack thread. Pure decisions, no I/O.

Each function takes what happened, the case as it stands and the time, and returns a
Decision: the deliveries to make and the state changes (effects) to keep. The router commits
both in one atomic step, so a replay after a crash either finds the decision kept or decides
again from the same state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bridge.core.deliveries import (
    ChannelPost,
    Delivery,
    Ephemeral,
    LinePush,
    LineReply,
    Reaction,
    RootUpdate,
    ThreadPost,
)
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    Media,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
    TimerKind,
)
from bridge.core.policy import Policy
from bridge.core.safety import Recent, is_flood, is_risky
from bridge.core.text import batches, describe_line_message, escape_for_slack, slack_to_plain, split_for_line

DELIVERED_REACTION = "white_check_mark"
FAILED_REACTION = "warning"

# Subtypes of Slack messages that are a person writing in the thread. Everything else
# (bot messages, joins, channel changes, our own posts) is never relayed.
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

# A namespace for retry keys, so the same delivery id always yields the same key.
_RETRY_KEY_NAMESPACE = uuid.UUID("0b7ad7b1-5a1e-4f7e-9a51-6a3c2b0d5e11")


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(StrEnum):
    UNFOLLOWED = "unfollowed"
    IDLE = "idle"
    COUNSELLOR = "counsellor"
    BLOCKED = "blocked"


# The actions a case's root message offers as buttons.
HOLD = "hold"
CLOSE = "close"
ESCALATE = "escalate"
BLOCK = "block"
UNBLOCK = "unblock"


@dataclass(frozen=True)
class Case:
    """A consultation. The number is the only handle Slack ever sees."""

    number: int
    status: CaseStatus
    child_id: str
    opened_at: float
    thread_ts: str | None = None
    closed_at: float | None = None
    closed_reason: str | None = None
    arrived_closed: bool = False  # opened outside the hours
    counsellor: str | None = None  # the Slack user who first answered
    counsellor_since: float | None = None
    last_counsellor_at: float | None = None  # the latest counsellor reply relayed
    last_child_at: float | None = None  # the latest message from the child
    hold: bool = False  # a counsellor stopped the automatic close
    busy_notified: bool = False
    earlier: tuple[int, ...] = ()  # the same child's earlier cases, oldest first
    closed_by: str | None = None  # the Slack user who closed or blocked it
    urgent: bool = False  # escalated, or risk words were found
    blocked: bool = False  # its child was blocked through this case (and is still)
    blocked_count: int = 0  # messages the blocked child sent since (content not kept)
    flood_until: float | None = None  # a flood hold holds the child's messages back until then
    blocked_risk: bool = False  # the supervisors heard of risk words from the blocked child

    @property
    def is_open(self) -> bool:
        return self.status is CaseStatus.OPEN


@dataclass(frozen=True)
class Queue:
    """Where a case stands among the open ones: for the busy notice."""

    open_cases: int  # open cases, this one included
    place: int  # 1 + unanswered open cases opened before this one

    @classmethod
    def of(cls, *, open_cases: int, unanswered_before: int) -> Queue:
        """The queue of an open case, from the counts: its place is behind every case opened
        before it that no counsellor has answered yet."""
        return cls(open_cases=open_cases, place=unanswered_before + 1)


@dataclass(frozen=True)
class Block:
    """A blocked child, as Slack may know it: the case it was blocked from, by whom, why."""

    case: int
    by: str
    at: float
    reason: str


# How many of a child's earlier case numbers a new case's root shows (and the bridge keeps).
EARLIER_CASES_SHOWN = 10


# --- effects: state changes, committed in one step with the deliveries -------------


@dataclass(frozen=True)
class OpenCase:
    """A new case for the child: the number is the next of the sequence, and the child's
    history becomes `history` (their latest case numbers, this one last)."""

    number: int
    child_id: str
    opened_at: float
    arrived_closed: bool
    earlier: tuple[int, ...]
    history: tuple[int, ...]


@dataclass(frozen=True)
class NoteRecent:
    """The child's message counts in the flood window (kept for window_s)."""

    number: int
    at: float
    sticker: bool
    window_s: int


@dataclass(frozen=True)
class EraseChildIds:
    """Forget the LINE user ID of these closed cases (their pseudonym stays, for history and blocks)."""

    numbers: tuple[int, ...]


@dataclass(frozen=True)
class TrimAudit:
    """Drop the audit records from before this time."""

    before: float


@dataclass(frozen=True)
class CloseCase:
    number: int
    reason: CloseReason
    by: str | None = None  # the Slack user, when a person closed it


@dataclass(frozen=True)
class ScheduleTimer:
    """Fire TimerFired(kind, arg) at the given time, once (scheduling it again changes nothing)."""

    kind: TimerKind
    arg: str
    at: float


@dataclass(frozen=True)
class MarkClosedNotice:
    """The child got the out-of-hours reply for this closed period."""

    child_id: str
    period: str
    until: float


@dataclass(frozen=True)
class MarkBusyNotified:
    number: int


@dataclass(frozen=True)
class MarkArrivedClosed:
    number: int


@dataclass(frozen=True)
class NoteCounsellorReply:
    number: int
    at: float


@dataclass(frozen=True)
class NoteChildMessage:
    number: int
    at: float


@dataclass(frozen=True)
class HoldCase:
    number: int


@dataclass(frozen=True)
class NoteClosedArrival:
    number: int
    at: float


@dataclass(frozen=True)
class ClearClosedArrivals:
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class AssignCounsellor:
    number: int
    user: str
    at: float


@dataclass(frozen=True)
class MarkUrgent:
    number: int


@dataclass(frozen=True)
class BlockChild:
    """The child of this case is blocked: their messages are counted, not relayed or kept."""

    number: int
    by: str
    reason: str
    at: float


@dataclass(frozen=True)
class ChangeMember:
    """Someone joined or left the case channel: the roster of who may use the controls."""

    user: str
    joined: bool


@dataclass(frozen=True)
class MarkBlockedRisk:
    number: int


@dataclass(frozen=True)
class UnblockChild:
    """Lift the block of the case's child; the roots of `shown_on` stop showing it."""

    number: int
    shown_on: tuple[int, ...] = ()


@dataclass(frozen=True)
class CountBlockedMessage:
    number: int


@dataclass(frozen=True)
class StartFlood:
    number: int
    until: float


@dataclass(frozen=True)
class HoldBack:
    """A child's message held back by a flood hold: its thread text, or one more sticker."""

    number: int
    text: str | None  # None for a sticker (counted, not kept)


@dataclass(frozen=True)
class ReleaseFlood:
    number: int


@dataclass(frozen=True)
class Audit:
    """A record of a control action or an automatic flag: who (a Slack user or "auto"), what,
    which case, and why. Kept for the policy's retention period."""

    case: int | None
    actor: str
    action: str
    reason: str = ""
    via: str = ""


Effect = (
    OpenCase
    | NoteRecent
    | EraseChildIds
    | TrimAudit
    | CloseCase
    | ScheduleTimer
    | MarkClosedNotice
    | MarkBusyNotified
    | MarkArrivedClosed
    | NoteClosedArrival
    | ClearClosedArrivals
    | AssignCounsellor
    | NoteCounsellorReply
    | NoteChildMessage
    | HoldCase
    | MarkUrgent
    | BlockChild
    | UnblockChild
    | MarkBlockedRisk
    | ChangeMember
    | CountBlockedMessage
    | StartFlood
    | HoldBack
    | ReleaseFlood
    | Audit
)


@dataclass(frozen=True)
class Decision:
    """Deliveries to make and state changes to keep, committed together in one step."""

    deliveries: tuple[Delivery, ...] = ()
    effects: tuple[Effect, ...] = ()


NOTHING = Decision()

AUTO = "auto"  # the actor of automatic flags in the audit record

# A counsellor who replied this recently is still talking with the child, even after closing
# time (the published guideline: about an hour per consultation): no automatic reply then.
LIVE_CONVERSATION_S = 3600


def conversation_is_live(case: Case, now: float) -> bool:
    return case.last_counsellor_at is not None and now - case.last_counsellor_at < LIVE_CONVERSATION_S


def busy_timer(number: int, at: float) -> ScheduleTimer:
    """A busy-notice timer; the time in its name keeps a re-armed timer distinct from a fired one."""
    return ScheduleTimer(TimerKind.BUSY, f"{number}:{int(at)}", at)


def busy_timer_case(arg: str) -> int:
    return int(arg.split(":")[0])


def retry_key(delivery_id: str) -> str:
    """A LINE X-Line-Retry-Key derived from the delivery id: stable across retries and replays."""
    return str(uuid.uuid5(_RETRY_KEY_NAMESPACE, delivery_id))


def _local(at: float, policy: Policy) -> datetime:
    return datetime.fromtimestamp(at, policy.timezone)


def _day_time(at: float, policy: Policy) -> str:
    local = _local(at, policy)
    return local.strftime(f"%m/%d({'月火水木金土日'[local.weekday()]}) %H:%M")


def state_text(case: Case, policy: Policy) -> str:
    """The case's state as the root message shows it, with its markers (urgent, blocked, ...)."""
    # Texts lose their outer spaces when the policy is read: the markers are spaced here.
    shown: list[str] = []
    if case.hold and case.is_open:
        shown.append(policy.render("state_held"))
    if case.urgent:
        shown.append(policy.render("state_urgent"))
    if case.blocked:
        shown.append(policy.render("state_blocked", count=case.blocked_count))
    if case.flood_until is not None:
        shown.append(policy.render("state_flood", until=_local(case.flood_until, policy).strftime("%H:%M")))
    markers = "".join(f"  {marker}" for marker in shown)
    if not case.is_open:
        how_text = {
            CloseReason.UNFOLLOWED: "closed_how_unfollowed",
            CloseReason.IDLE: "closed_how_idle",
            CloseReason.COUNSELLOR: "closed_how_counsellor",
            CloseReason.BLOCKED: "closed_how_blocked",
        }
        how = ""
        if case.closed_reason in how_text:
            how = policy.render(how_text[CloseReason(case.closed_reason)], user=f"<@{case.closed_by}>")
        at = _local(case.closed_at or case.opened_at, policy).strftime("%H:%M")
        return policy.render("state_closed", how=how or str(case.closed_reason or ""), at=at) + markers
    if case.counsellor:
        since = _local(case.counsellor_since or case.opened_at, policy).strftime("%H:%M")
        return policy.render("state_with_counsellor", counsellor=f"<@{case.counsellor}>", since=since) + markers
    if case.arrived_closed:
        return policy.render("state_waiting_closed", since=_day_time(case.opened_at, policy)) + markers
    return policy.render("state_waiting", since=_local(case.opened_at, policy).strftime("%H:%M")) + markers


def root_text(case: Case, policy: Policy) -> str:
    """The text of the case's root message in Slack: its number, when it opened, its state,
    and the numbers of the child's earlier cases (the only history Slack shows)."""
    cases = ", ".join(f"#{n}" for n in case.earlier)
    earlier = "  " + policy.render("earlier_cases", cases=cases) if case.earlier else ""
    return policy.render(
        "case_root",
        case=case.number,
        opened_at=_day_time(case.opened_at, policy),
        state=state_text(case, policy),
        earlier=earlier,
    )


def root_buttons(case: Case) -> tuple[str, ...]:
    """The actions the root offers: hold while the automatic close can still end the case,
    close while open, escalate always, block or unblock (the role is checked when used)."""
    buttons: list[str] = []
    if case.is_open:
        if not case.hold:
            buttons.append(HOLD)
        buttons.append(CLOSE)
    buttons.append(ESCALATE)
    if case.blocked:
        buttons.append(UNBLOCK)
    elif case.is_open:
        buttons.append(BLOCK)
    return tuple(buttons)


def root_update(case: Case, policy: Policy) -> RootUpdate:
    """The root message as it should now read, with the buttons that can be used."""
    return RootUpdate(case=case.number, text=root_text(case, policy), buttons=root_buttons(case))


def supervisor_mention(policy: Policy) -> str:
    """The supervisors' group mention, followed by a space, or nothing when there is no group."""
    return f"<!subteam^{policy.supervisor_group}> " if policy.supervisor_group else ""


def urgent_deliveries(case: Case, policy: Policy, *, alert: str, note: str) -> list[Delivery]:
    """What marking a case urgent sends: the alert to the supervisors' channel, the note and
    the emergency checklist in the thread. The child is told nothing."""
    return [
        ChannelPost(text=alert, target="supervisors"),
        ThreadPost(case=case.number, text=note, role="note"),
        ThreadPost(case=case.number, text=policy.render("emergency_checklist"), role="note"),
    ]


def thread_link(channel: str, thread_ts: str | None) -> str:
    """A link to a case thread (Slack resolves it in any workspace the reader is in)."""
    return f"https://slack.com/archives/{channel}/p{thread_ts.replace('.', '')}" if thread_ts else ""


def consultation_timers(case: Case, policy: Policy, start: float) -> list[Effect]:
    """The deadlines a consultation keeps from `start`: unanswered alert, the one-hour guideline."""
    deadlines = [
        (TimerKind.UNANSWERED, policy.unanswered_alert_seconds),
        (TimerKind.SOFT_WARNING, policy.soft_limit_warning_seconds),
        (TimerKind.SOFT_LIMIT, policy.soft_limit_seconds),
        (TimerKind.OVERTIME, policy.overtime_alert_seconds),
    ]
    return [ScheduleTimer(kind, str(case.number), start + seconds) for kind, seconds in deadlines if seconds > 0]


# --- LINE -> Slack -------------------------------------------------------------------


def on_child_message(
    message: ChildMessage,
    case: Case,
    policy: Policy,
    *,
    now: float,
    created: bool,
    queue: Queue | None = None,
    closed_notice: str | None = None,
    recent: Recent | None = None,
    channel: str = "",
) -> Decision:
    """The child's message goes to the case's thread, escaped so it can ping nobody.

    Risk words mark the case urgent and alert the supervisors (once per case). Beyond the
    flood limits (recent: what the child sent within the window, this message included),
    the child's messages are held back until the cool-down ends, and the child, the thread
    and the supervisors are told once.

    Outside the hours, a child no counsellor is talking with gets one automatic reply per
    closed period (with the 24-hour crisis lines when the message has risk words), and the
    case joins the list the opening digest shows. In the hours, a new case is told at once
    when capacity is full, or gets a timer for the busy notice.
    """
    shown = escape_for_slack(message.text) if message.text is not None else describe_media(message.media, policy)
    sticker = message.media is not None and message.media.type == "sticker"
    deliveries: list[Delivery] = []
    effects: list[Effect] = [NoteChildMessage(case.number, now)]  # resets the silence clock
    updated = case  # the root is updated once, at the end, if anything on it changed
    # Risk words come first: a flood must not hide them.
    risky = is_risky(message.text, policy.risk_expressions)
    first_risk = risky and not case.urgent
    # A hold lasts until its timer lifts it (not merely until its time), so what was held
    # reaches the thread before anything sent after it.
    flooding = case.flood_until is not None
    if not flooding and is_flood(
        recent, sticker=sticker, max_messages=policy.flood_max_messages, max_stickers=policy.flood_max_stickers
    ):
        flooding = True
        until = now + policy.flood_cooldown_seconds
        updated = replace(updated, flood_until=until)
        until_text = _local(until, policy).strftime("%H:%M")
        link = thread_link(channel, case.thread_ts)
        deliveries += [
            ThreadPost(case=case.number, text=policy.render("flood_note", until=until_text), role="note"),
            ChannelPost(
                text=policy.render("flood_alert", case=case.number, until=until_text, link=link), target="supervisors"
            ),
            _answer(message, policy.render("flood_notice_child"), purpose="flood", case=case),
        ]
        effects += [
            StartFlood(case.number, until),
            ScheduleTimer(TimerKind.FLOOD_RELEASE, f"{case.number}:{int(until)}", until),
            Audit(case.number, AUTO, "flood", f"{recent.messages if recent else 0} messages in the window"),
        ]
    held = flooding and not risky  # risk words are never held back: the supervisors are sent to read them
    if held:
        effects.append(HoldBack(case.number, None if sticker else shown))  # posted when the hold lifts
    else:
        deliveries.insert(0, ThreadPost(case=case.number, text=shown, role="child"))
    if first_risk:
        updated = replace(updated, urgent=True)
        alert = policy.render(
            "risk_alert",
            mention=supervisor_mention(policy),
            case=case.number,
            link=thread_link(channel, case.thread_ts),
        )
        deliveries += urgent_deliveries(case, policy, alert=alert, note=policy.render("risk_note"))
        effects += [MarkUrgent(case.number), Audit(case.number, AUTO, "risk", "risk words in a message")]
    if updated != case:  # after the child's post, which may be the one that posts the root
        deliveries.append(root_update(updated, policy))
    schedule = policy.schedule
    at = _local(now, policy)
    if not schedule.is_open(at):  # held back or not, the child hears that the service is closed
        if conversation_is_live(case, now):
            # The counsellor answering after closing carries on: no automatic reply, except the
            # crisis lines with the case's first risk words (that counsellor may have gone).
            if first_risk:
                deliveries.append(_answer(message, policy.render("crisis_lines"), purpose="crisis", case=case))
            return Decision(tuple(deliveries), tuple(effects))
        opening = schedule.next_opening(at)
        effects.append(NoteClosedArrival(case.number, now))
        if opening is not None:
            effects.append(ScheduleTimer(TimerKind.OPENING, str(int(opening.timestamp())), opening.timestamp()))
        if not case.arrived_closed:
            effects.append(MarkArrivedClosed(case.number))
            if not created:  # an older case waits again: its root says so
                deliveries = [d for d in deliveries if not isinstance(d, RootUpdate)]
                deliveries.append(root_update(replace(updated, arrived_closed=True), policy))
        period = opening.isoformat() if opening else "never"
        # The notice names the period, and whether the crisis lines went out in it too.
        with_crisis_lines = period + "+crisis"
        texts: list[str] = []
        if closed_notice not in (period, with_crisis_lines):
            texts.append(
                policy.render("closed_reply", next_opening=policy.format_opening(opening, at))
                if opening
                else policy.render("closed_reply_no_opening")
            )
        if risky and closed_notice != with_crisis_lines:
            # Nobody can answer now: the child hears where help is, day and night (once a period).
            texts.append(policy.render("crisis_lines"))
        if texts:
            deliveries.append(_answer(message, *texts, purpose=f"closed:{message.event_id}", case=case))
            until = opening.timestamp() if opening else now + 7 * 86400
            told = with_crisis_lines if risky or closed_notice == with_crisis_lines else period
            effects.append(MarkClosedNotice(message.child_id, told, until))
        return Decision(tuple(deliveries), tuple(effects))
    if created:
        if queue is not None and queue.open_cases > policy.capacity:
            deliveries.append(
                _answer(message, policy.render("busy_notice", place=queue.place), purpose="busy", case=case)
            )
            effects.append(MarkBusyNotified(case.number))
        elif policy.busy_notice_seconds:
            effects.append(busy_timer(case.number, case.opened_at + policy.busy_notice_seconds))
        effects.extend(consultation_timers(case, policy, case.opened_at))
    return Decision(tuple(deliveries), tuple(effects))


def _answer(message: ChildMessage, *texts: str, purpose: str, case: Case) -> LineReply:
    return LineReply(
        to=message.child_id,
        reply_token=message.reply_token,
        event_ms=message.timestamp_ms,
        texts=texts,
        retry_key=retry_key(f"{purpose}:{message.event_id}"),
        case=case.number,
    )


def _closing_reminder_timer(policy: Policy, at: datetime) -> list[Effect]:
    if not policy.closing_reminder_minutes:
        return []
    closing = policy.schedule.next_closing(at)
    if closing is None:
        return []
    remind_at = closing.timestamp() - policy.closing_reminder_minutes * 60
    if remind_at <= at.timestamp():
        return []  # too late for a reminder in this period
    return [ScheduleTimer(TimerKind.CLOSING, str(int(closing.timestamp())), remind_at)]


def standing_timers(policy: Policy, *, now: float) -> tuple[Effect, ...]:
    """Timers that must exist whatever happens: the next closing reminder. The router
    schedules them regularly; scheduling one twice changes nothing."""
    return tuple(_closing_reminder_timer(policy, _local(now, policy)))


def ids_closed_before(policy: Policy, *, now: float) -> float:
    """Cases closed before this time no longer keep their child's LINE user ID."""
    return now - policy.closed_case_days * 86400


def on_retention(closed_long_ago: tuple[int, ...], policy: Policy, *, now: float) -> Decision:
    """Personal data kept only as long as needed: the LINE user IDs of cases closed before
    ids_closed_before() are erased, and audit records past their retention period dropped."""
    effects: list[Effect] = [TrimAudit(now - policy.audit_retention_days * 86400)]
    if closed_long_ago:
        effects.insert(0, EraseChildIds(closed_long_ago))
    return Decision(effects=tuple(effects))


def describe_media(media: Media | None, policy: Policy) -> str:
    """What the thread shows for a sticker, image or other non-text message (labels from the policy)."""
    if media is None:
        return describe_line_message("unknown", labels=policy.media_labels())
    return describe_line_message(
        media.type,
        sticker_keywords=media.keywords,
        file_name=media.file_name,
        duration_ms=media.duration_ms,
        title=media.title,
        labels=policy.media_labels(),
    )


def on_blocked_message(message: ChildMessage, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """A blocked child's message: not relayed, not answered, its content not kept; it is
    counted on the case the block was made from. Risk words still reach the supervisors."""
    if case is None:
        return NOTHING
    count = case.blocked_count + 1
    deliveries: list[Delivery] = []
    effects: list[Effect] = [CountBlockedMessage(case.number)]
    if count <= 10 or count % 10 == 0:  # the root shows the count without an update per message
        deliveries.append(root_update(replace(case, blocked_count=count), policy))
    if not case.blocked_risk and is_risky(message.text, policy.risk_expressions):  # once per block
        link = thread_link(channel, case.thread_ts)
        alert = policy.render("blocked_risk_alert", mention=supervisor_mention(policy), case=case.number, link=link)
        deliveries.append(ChannelPost(text=alert, target="supervisors"))
        effects += [MarkBlockedRisk(case.number), Audit(case.number, AUTO, "risk", "risk words from a blocked account")]
    return Decision(tuple(deliveries), tuple(effects))


def on_flood_timer(arg: str, case: Case | None, held: tuple[list[str], int], policy: Policy) -> Decision:
    """The cool-down is over: what was held back reaches the thread, and the hold lifts.
    A timer of an earlier hold (arg "case:until") changes nothing."""
    if case is None or case.flood_until is None or arg.partition(":")[2] != str(int(case.flood_until)):
        return NOTHING
    texts, stickers = held
    note = policy.render("flood_released_note", messages=len(texts) + stickers, stickers=stickers)
    deliveries: list[Delivery] = [ThreadPost(case=case.number, text=note, role="note")]
    deliveries += [ThreadPost(case=case.number, text=part, role="child") for part in _grouped(texts)]
    deliveries.append(root_update(replace(case, flood_until=None), policy))
    return Decision(tuple(deliveries), (ReleaseFlood(case.number),))


def _grouped(texts: list[str], limit: int = 3000) -> list[str]:
    """Held messages as few thread posts as possible, one message per line, none cut."""
    parts: list[str] = []
    for text in texts:
        if parts and len(parts[-1]) + 1 + len(text) <= limit:
            parts[-1] += "\n" + text
        else:
            parts.append(text)
    return parts


def on_child_followed(event: ChildFollowed, policy: Policy, *, block: Block | None = None) -> Decision:
    """A new friend gets the welcome text, by reply while the token is fresh. A blocked child
    gets no replies, the welcome included."""
    if block is not None:
        return NOTHING
    delivery_id = f"welcome:{event.event_id}"
    return Decision(
        deliveries=(
            LineReply(
                to=event.child_id,
                reply_token=event.reply_token,
                event_ms=event.timestamp_ms,
                texts=(policy.render("welcome"),),
                retry_key=retry_key(delivery_id),
            ),
        )
    )


def on_child_unfollowed(case: Case | None, policy: Policy, *, now: float) -> Decision:
    """A child who blocks the account ends their open case; the thread is told."""
    if case is None or not case.is_open:
        return NOTHING
    note = ThreadPost(case=case.number, text=policy.render("unfollow_note", case=case.number), role="note")
    closed = replace(case, status=CaseStatus.CLOSED, closed_at=now, closed_reason=CloseReason.UNFOLLOWED)
    root = root_update(closed, policy)
    return Decision(deliveries=(note, root), effects=(CloseCase(case.number, CloseReason.UNFOLLOWED),))


# --- timers --------------------------------------------------------------------------


def on_busy_timer(case: Case | None, policy: Policy, *, now: float, queue: Queue | None) -> Decision:
    """No counsellor answered in time: the child hears once that replies may take a while.

    If the service closed meanwhile, the timer moves to the next opening.
    """
    if case is None or not case.is_open or case.counsellor is not None or case.busy_notified:
        return NOTHING
    at = _local(now, policy)
    if not policy.schedule.is_open(at):
        opening = policy.schedule.next_opening(at)
        if opening is None or not policy.busy_notice_seconds:
            return NOTHING
        return Decision(effects=(busy_timer(case.number, opening.timestamp() + policy.busy_notice_seconds),))
    place = queue.place if queue else 1
    push = LinePush(
        to=case.child_id,
        texts=(policy.render("busy_notice", place=place),),
        retry_key=retry_key(f"busy-timer:{case.number}"),
        case=case.number,
    )
    return Decision(deliveries=(push,), effects=(MarkBusyNotified(case.number),))


def on_opening_timer(arrivals: list[tuple[Case, float]], policy: Policy, *, now: float, opening_at: float) -> Decision:
    """The service opened: one channel message lists the cases that came in while closed,
    oldest first, and each of them gets its busy-notice timer from the opening on."""
    # Judged at the opening instant at the earliest: clocks of Redis and workers may differ.
    at = _local(max(now, opening_at), policy)
    if not policy.schedule.is_open(at):
        # The hours changed, or the timer fired after a whole open period: wait for the next one.
        opening = policy.schedule.next_opening(at)
        if opening is None:
            return NOTHING
        return Decision(effects=(ScheduleTimer(TimerKind.OPENING, str(int(opening.timestamp())), opening.timestamp()),))
    waiting = sorted(
        ((arrived, case) for case, arrived in arrivals if case.is_open and not conversation_is_live(case, now)),
        key=lambda p: p[0],
    )
    effects: list[Effect] = [ClearClosedArrivals(tuple(case.number for case, _ in arrivals))]
    for _, case in waiting:
        if policy.busy_notice_seconds and case.counsellor is None and not case.busy_notified:
            effects.append(busy_timer(case.number, at.timestamp() + policy.busy_notice_seconds))
        if case.arrived_closed:  # its consultation starts now: the guideline counts from here
            effects.extend(consultation_timers(case, policy, at.timestamp()))
    if not waiting:
        return Decision(effects=tuple(effects))
    lines = "\n".join(
        policy.render("opening_digest_line", case=case.number, arrived_at=_day_time(arrived, policy))
        for arrived, case in waiting
    )
    digest = ChannelPost(text=policy.render("opening_digest", count=len(waiting), cases=lines))
    return Decision(deliveries=(digest,), effects=tuple(effects))


def on_unanswered_timer(case: Case | None, policy: Policy, *, now: float, channel: str) -> Decision:
    """Nobody has answered a case yet: the channel is told, addressed to those on duty."""
    if case is None or not case.is_open or case.counsellor is not None:
        return NOTHING
    if not policy.schedule.is_open(_local(now, policy)):
        return NOTHING  # the opening digest lists it instead
    mention = f"<!subteam^{policy.on_duty_group}>" if policy.on_duty_group else "<!here>"
    waited = max(1, round((now - case.opened_at) / 60))
    text = policy.render(
        "unanswered_alert",
        mention=mention,
        case=case.number,
        minutes=waited,
        link=thread_link(channel, case.thread_ts),
    )
    return Decision(deliveries=(ChannelPost(text=text),))


def on_guideline_timer(kind: TimerKind, case: Case | None, policy: Policy, *, now: float, channel: str) -> Decision:
    """The one-hour guideline: reminders in the thread, then the supervisors' channel.

    The child is never told. A case that is closed, or was opened while closed and has not
    started yet, is left alone.
    """
    if case is None or not case.is_open:
        return NOTHING
    seconds = {
        TimerKind.SOFT_WARNING: policy.soft_limit_warning_seconds,
        TimerKind.SOFT_LIMIT: policy.soft_limit_seconds,
        TimerKind.OVERTIME: policy.overtime_alert_seconds,
    }[kind]
    minutes = max(1, round(seconds / 60))
    if kind == TimerKind.OVERTIME:
        link = thread_link(channel, case.thread_ts)
        text = policy.render("overtime_alert", case=case.number, minutes=minutes, link=link)
        return Decision(deliveries=(ChannelPost(text=text, target="supervisors"),))
    name = "soft_limit_warning_note" if kind == TimerKind.SOFT_WARNING else "soft_limit_note"
    return Decision(deliveries=(ThreadPost(case=case.number, text=policy.render(name, minutes=minutes), role="note"),))


def parse_case_number(text: str) -> int | None:
    """'12', '#12' or '＃１２' -> 12; anything else -> None."""
    cleaned = text.strip().translate(_FULL_WIDTH).lstrip("#")
    # isascii: str.isdigit() also accepts superscripts such as "²", which int() refuses.
    return int(cleaned) if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 9 else None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９＃", "0123456789#")


def on_closing_timer(open_cases: list[Case], closing_at: float, policy: Policy, *, now: float) -> Decision:
    """Shortly before closing, every open case's thread is reminded that time is nearly up."""
    at = _local(now, policy)
    if not policy.schedule.is_open(at) or now >= closing_at:
        return NOTHING
    minutes = max(1, round((closing_at - now) / 60))
    text = policy.render("closing_reminder", minutes=minutes, closing_at=_local(closing_at, policy).strftime("%H:%M"))
    return Decision(
        deliveries=tuple(ThreadPost(case=c.number, text=text, role="note") for c in open_cases if c.is_open)
    )


# --- Slack -> LINE -------------------------------------------------------------------


def is_counsellor_reply(message: ThreadMessage, *, channel: str) -> bool:
    """True for a person's reply inside a thread of the consultation channel."""
    return (
        message.channel == channel
        and message.subtype in _HUMAN_SUBTYPES
        and message.bot_id is None
        and message.user is not None
        and message.thread_ts is not None
        and message.thread_ts != message.ts
    )


def is_internal_note(message: ThreadMessage, policy: Policy) -> bool:
    return message.text.lstrip().startswith(policy.note_prefix)


def on_counsellor_message(
    message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str, delivery_id: str, now: float
) -> Decision:
    """A counsellor's thread reply becomes pushes to the child (at most five texts each).

    The first counsellor to answer becomes the case's counsellor, and the root says so.
    """
    if case is None or not is_counsellor_reply(message, channel=channel) or is_internal_note(message, policy):
        return NOTHING
    assert message.user is not None  # is_counsellor_reply checked it
    if not case.is_open:
        text = policy.render("closed_case_ephemeral", case=case.number)
        return Decision(deliveries=(Ephemeral(case=case.number, user=message.user, text=text),))
    plain = slack_to_plain(message.text).strip()
    if not plain:
        return NOTHING
    groups = batches(split_for_line(plain), 5)
    pushes = tuple(
        LinePush(
            to=case.child_id,
            texts=tuple(group),
            retry_key=retry_key(f"{delivery_id}:{index}"),
            case=case.number,
            slack_ts=message.ts,
            final_part=index == len(groups) - 1,
        )
        for index, group in enumerate(groups)
    )
    clock = (NoteCounsellorReply(case.number, now), *silence_timers(case, policy, now))
    if case.counsellor is not None:
        return Decision(deliveries=pushes, effects=clock)
    answered = replace(case, counsellor=message.user, counsellor_since=now)
    return Decision(
        deliveries=(*pushes, root_update(answered, policy)),
        effects=(AssignCounsellor(case.number, message.user, now), *clock),
    )


def silence_timers(case: Case, policy: Policy, replied_at: float) -> list[Effect]:
    """After a counsellor's message: the check-in and the close, named after that message's
    time, so a later message (of either side) makes them moot instead of moving them."""
    arg = f"{case.number}:{round(replied_at * 1000)}"
    timers = [
        (TimerKind.IDLE_WARNING, policy.idle_warning_seconds),
        (TimerKind.IDLE_CLOSE, policy.idle_close_seconds),
    ]
    return [ScheduleTimer(kind, arg, replied_at + seconds) for kind, seconds in timers if seconds > 0]


def _silence_still_holds(case: Case | None, arg: str) -> bool:
    """The counsellor's message the timer was set for is still the last word, unanswered."""
    if case is None or not case.is_open or case.hold or case.last_counsellor_at is None:
        return False
    replied_ms = int(arg.split(":")[1])
    if round(case.last_counsellor_at * 1000) != replied_ms:
        return False  # a later counsellor message set timers of its own
    return case.last_child_at is None or round(case.last_child_at * 1000) < replied_ms


def on_silence_timer(kind: TimerKind, arg: str, case: Case | None, policy: Policy, *, now: float) -> Decision:
    """Ten minutes without a reply may end a consultation: first a check-in, then the close."""
    if not _silence_still_holds(case, arg):
        return NOTHING
    assert case is not None
    if kind == TimerKind.IDLE_WARNING:
        checkin = LinePush(
            to=case.child_id,
            texts=(policy.render("idle_checkin"),),
            retry_key=retry_key(f"idle-warning:{arg}"),
            case=case.number,
        )
        return Decision(deliveries=(checkin,))
    closed = replace(case, status=CaseStatus.CLOSED, closed_at=now, closed_reason=CloseReason.IDLE)
    minutes = max(1, round(policy.idle_close_seconds / 60))
    return Decision(
        deliveries=(
            LinePush(
                to=case.child_id,
                texts=(policy.render("idle_closed_child"),),
                retry_key=retry_key(f"idle-close:{arg}"),
                case=case.number,
            ),
            ThreadPost(case=case.number, text=policy.render("idle_closed_note", minutes=minutes), role="note"),
            root_update(closed, policy),
        ),
        effects=(CloseCase(case.number, CloseReason.IDLE),),
    )


def _was_relayed(message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str) -> bool:
    return (
        case is not None
        and is_counsellor_reply(message, channel=channel)
        and not is_internal_note(message, policy)
        and (case.closed_at is None or float(message.ts) < case.closed_at)
    )


def on_counsellor_edit(edit: ThreadEdit, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """Editing a sent message changes nothing on LINE; the thread says so."""
    if case is None or edit.previous.text == edit.current.text:
        return NOTHING  # Slack also reports link unfurls as edits
    # A note turned into a reply by an edit is not sent either: say so, or the child waits.
    note_made_reply = (
        case.is_open
        and is_counsellor_reply(edit.previous, channel=channel)
        and is_internal_note(edit.previous, policy)
        and not is_internal_note(edit.current, policy)
    )
    if not (note_made_reply or _was_relayed(edit.previous, case, policy, channel=channel)):
        return NOTHING
    return Decision(deliveries=(ThreadPost(case=case.number, text=policy.render("edit_note"), role="note"),))


def on_counsellor_delete(delete: ThreadDelete, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """Deleting a sent message does not unsend it on LINE; the thread says so."""
    if case is None or not _was_relayed(delete.previous, case, policy, channel=channel):
        return NOTHING
    return Decision(deliveries=(ThreadPost(case=case.number, text=policy.render("delete_note"), role="note"),))


# --- delivery outcomes ---------------------------------------------------------------


def after_line_delivered(push: LinePush | LineReply) -> tuple[Delivery, ...]:
    """What follows a push LINE accepted: the delivered mark once the last part is in."""
    if isinstance(push, LinePush) and push.final_part and push.slack_ts and push.case is not None:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=DELIVERED_REACTION),)
    return ()


def after_line_failed(push: LinePush | LineReply, reason: str, policy: Policy) -> tuple[Delivery, ...]:
    """What follows a push that finally failed: a warning mark and a note saying why."""
    if push.case is None:
        return ()
    note = ThreadPost(case=push.case, text=policy.render("delivery_failed_note", reason=reason), role="note")
    if isinstance(push, LinePush) and push.slack_ts:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=FAILED_REACTION), note)
    return (note,)
