"""What happened, as the core sees it: inbound events translated from LINE and Slack."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from enum import Enum, StrEnum
from typing import assert_never

from bridge.core.ids import CaseNumber, LineUserId, MessageTs, SlackUserId, ThreadTs


@dataclass(frozen=True)
class Media:
    """What a non-text LINE message is, without its content."""

    type: str  # sticker, image, video, audio, file, location, or a type LINE adds later
    keywords: tuple[str, ...] = ()
    file_name: str | None = None
    duration_ms: int | None = None
    title: str | None = None


@dataclass(frozen=True)
class ChildMessage:
    """A message a child sent to the LINE account: its text, or what kind of media it is."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int
    reply_token: str | None
    text: str | None
    media: Media | None = None  # for stickers, images and other non-text messages


@dataclass(frozen=True)
class ChildFollowed:
    """The child added the account as a friend (or unblocked it)."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int
    reply_token: str | None


@dataclass(frozen=True)
class ChildUnfollowed:
    """The child blocked the account."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int


@dataclass(frozen=True)
class ThreadMessage:
    """A message posted in the consultation channel (a thread reply or not)."""

    channel: str
    ts: MessageTs
    thread_ts: ThreadTs | None
    user: SlackUserId | None
    text: str  # plain text, as a child would read it: the Slack adapter converted the markup
    subtype: str | None = None
    bot_id: str | None = None


@dataclass(frozen=True)
class ThreadEdit:
    """A channel message was edited; previous and current are the two versions."""

    channel: str
    previous: ThreadMessage
    current: ThreadMessage


@dataclass(frozen=True)
class ThreadDelete:
    """A channel message was deleted."""

    channel: str
    previous: ThreadMessage


class ControlVia(StrEnum):
    """How a control request was made in Slack."""

    COMMAND = "command"  # a slash command: the text carries the number and the reason
    BUTTON = "button"  # a root message's button, then its window
    SHORTCUT = "shortcut"  # the message shortcut in a thread, then its window


@dataclass(frozen=True)
class ControlRequested:
    """Someone in Slack asked for a case action: by slash command, root button or shortcut.

    Nothing is checked yet (membership, role, the number, the reason): the core does that.
    """

    action: str  # hold, close, block, unblock, escalate, cases
    text: str  # a command's text as typed ("12 reason"), or the case number a button carried
    user: SlackUserId
    via: ControlVia
    reason: str = ""  # typed into a window (buttons and the shortcut); commands carry it in text
    thread_ts: ThreadTs | None = None  # the shortcut names the thread, not the number
    # The channel it was made in: the thread's, and where an answer about no case is shown (None:
    # recorded before requests named it; SLACK_CHANNEL_ID).
    channel: str | None = None


@dataclass(frozen=True)
class PurgeRequested:
    """An operator asked, on the command line (`bridge purge`), to erase everything the bridge
    keeps about the child of a case (on the request of a guardian or of the office). Nothing is
    checked yet: the core decides."""

    case: CaseNumber
    operator: str  # who ran the command, as they named themselves (checked to be a plain name)


@dataclass(frozen=True)
class MemberChanged:
    """Someone joined or left a Slack channel: the roster of who may use the controls."""

    channel: str
    user: SlackUserId
    joined: bool


class TimerKind(StrEnum):
    """What a deadline is for. The values are stored in Redis: do not change them."""

    BUSY = "busy"  # the busy notice to a child no counsellor has answered
    OPENING = "opening"  # the opening digest of cases that arrived while closed
    CLOSING = "closing"  # the reminder in every open thread before closing time
    UNANSWERED = "unanswered"  # the alert about a case nobody has answered
    SOFT_WARNING = "soft-warning"  # the one-hour guideline: the first reminder
    SOFT_LIMIT = "soft-limit"  # the one-hour guideline: the hour is up
    OVERTIME = "overtime"  # the one-hour guideline: the supervisors are told
    IDLE_WARNING = "idle-warning"  # silence after a counsellor's message: the check-in
    IDLE_CLOSE = "idle-close"  # silence after a counsellor's message: the close
    FLOOD_RELEASE = "flood-release"  # the end of a flood's cool-down
    UNANSWERED_CLOSE = "unanswered-close"  # a case nobody answered for the retention policy's hours


class TimerArgs(Enum):
    """What names a timer besides its kind: a case, an instant, or both. In Redis a timer is the
    member "kind|args" (timer_member), so the same timer armed twice is one timer."""

    CASE = "case"  # "unanswered|12"
    INSTANT = "instant"  # "opening|1700000000"
    CASE_AND_INSTANT = "case:instant"  # "busy|12:1700000000"


def timer_args(kind: TimerKind) -> TimerArgs:
    """What names a timer of this kind. The instant is, by kind: BUSY the time the notice is due
    (s; a re-armed timer is another), OPENING the opening (s), CLOSING the closing (s),
    IDLE_WARNING and IDLE_CLOSE the counsellor's message they follow (ms), FLOOD_RELEASE the end
    of the cool-down (s)."""
    match kind:
        case (
            TimerKind.UNANSWERED
            | TimerKind.SOFT_WARNING
            | TimerKind.SOFT_LIMIT
            | TimerKind.OVERTIME
            | TimerKind.UNANSWERED_CLOSE
        ):
            return TimerArgs.CASE
        case TimerKind.OPENING | TimerKind.CLOSING:
            return TimerArgs.INSTANT
        case TimerKind.BUSY | TimerKind.IDLE_WARNING | TimerKind.IDLE_CLOSE | TimerKind.FLOOD_RELEASE:
            return TimerArgs.CASE_AND_INSTANT
        case _:
            assert_never(kind)


def check_timer_args(kind: TimerKind, case: CaseNumber | None, instant: int | None) -> None:
    """ValueError unless the timer has exactly the case and instant its kind is named by."""
    args = timer_args(kind)
    wants_case = args is not TimerArgs.INSTANT
    # Busy timers armed before they carried their time ("busy|12") still name their case.
    wants_instant = args is not TimerArgs.CASE and not (kind is TimerKind.BUSY and instant is None)
    if (case is not None) != wants_case or (instant is not None) != wants_instant:
        raise ValueError(f"a {kind.value} timer is named by {args.value}")


@dataclass(frozen=True)
class TimerFired:
    """A deadline kept in Redis came due: kind says what it is for; case and instant, which one
    (those its kind is named by, timer_args; checked when made)."""

    kind: TimerKind
    _: KW_ONLY
    case: CaseNumber | None = None
    instant: int | None = None

    def __post_init__(self) -> None:
        check_timer_args(self.kind, self.case, self.instant)

    def case_number(self) -> CaseNumber:
        """The case, for a kind named by one."""
        if self.case is None:
            raise ValueError(f"a {self.kind.value} timer names no case")
        return self.case

    def instant_value(self) -> int:
        """The instant, for a kind named by one (a busy timer armed before it had one: none)."""
        if self.instant is None:
            raise ValueError(f"this {self.kind.value} timer names no instant")
        return self.instant


@dataclass(frozen=True)
class Ignored:
    """An event the bridge does not act on; reason is safe to log (no content, no ids)."""

    reason: str


InboundEvent = (
    ChildMessage
    | ChildFollowed
    | ChildUnfollowed
    | ThreadMessage
    | ThreadEdit
    | ThreadDelete
    | ControlRequested
    | PurgeRequested
    | MemberChanged
    | TimerFired
    | Ignored
)


def timer_member(kind: TimerKind, *, case: CaseNumber | None, instant: int | None) -> str:
    """The name a timer has in Redis: "busy|12:1700000000", "opening|1700000000", "unanswered|12".
    ValueError unless the case and instant are those its kind is named by."""
    check_timer_args(kind, case, instant)
    parts = [str(value) for value in (case, instant) if value is not None]
    return f"{kind.value}|{':'.join(parts)}"


def timer_fired(member: str) -> TimerFired | Ignored:
    """A timer named as timer_member names it, as the event of its coming due. A kind no longer
    known, or a name that does not fit its kind, is Ignored (never raises)."""
    kind_text, _, args_text = member.partition("|")
    if kind_text not in TimerKind.__members__.values():
        return Ignored("unknown timer kind")
    kind = TimerKind(kind_text)
    numbers = [_canonical_int(part) for part in args_text.split(":")]
    if None in numbers:
        return Ignored(f"garbled {kind.value} timer")
    values = [n for n in numbers if n is not None]
    args = timer_args(kind)
    case: CaseNumber | None = None
    instant: int | None = None
    if args is TimerArgs.CASE and len(values) == 1:
        case = CaseNumber(values[0])
    elif args is TimerArgs.INSTANT and len(values) == 1:
        instant = values[0]
    elif args is TimerArgs.CASE_AND_INSTANT and len(values) == 2:
        case, instant = CaseNumber(values[0]), values[1]
    elif kind is TimerKind.BUSY and len(values) == 1:
        case = CaseNumber(values[0])  # armed before busy timers carried their time
    else:
        return Ignored(f"garbled {kind.value} timer")
    return TimerFired(kind, case=case, instant=instant)


def _canonical_int(text: str) -> int | None:
    """An int written as str(int) writes it ("12", "-5"); anything else (" 12", "012", "1.5") None,
    so a name read back is written again exactly as it was."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if str(value) == text else None
