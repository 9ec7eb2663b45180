"""The state changes a decision keeps, and the Decision itself: deliveries and effects,
committed together in one step by the router."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from enum import StrEnum

from bridge.core.case import (
    CloseReason,
)
from bridge.core.deliveries import (
    Delivery,
)
from bridge.core.events import ControlVia, TimerKind, check_timer_args, timer_member
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId


@dataclass(frozen=True)
class OpenCase:
    """A new case for the child: the number is the next of the sequence, and the child's
    history becomes `history` (their latest case numbers, this one last)."""

    number: CaseNumber
    child_id: LineUserId
    opened_at: float
    arrived_closed: bool
    earlier: tuple[CaseNumber, ...]
    history: tuple[CaseNumber, ...]
    channel: str | None = None  # the pool's channel its thread goes in; None: SLACK_CHANNEL_ID


@dataclass(frozen=True)
class NoteRecent:
    """The child's message counts in the flood window (kept for window_s)."""

    number: CaseNumber
    at: float
    sticker: bool
    window_s: int


@dataclass(frozen=True)
class EraseChildIds:
    """Forget the LINE user ID of these closed cases (their pseudonym stays, for history and blocks)."""

    numbers: tuple[CaseNumber, ...]


@dataclass(frozen=True)
class DeleteCaseRecords:
    """These closed cases' records go, with what points at them: the lookup by their Slack
    thread, their lanes, their place in the child's history and in the indexes of cases."""

    numbers: tuple[CaseNumber, ...]


@dataclass(frozen=True)
class ForgetChild:
    """Everything the bridge keeps about the child of case `number` goes, on request: the
    records of `cases` (every case of the child's, open or closed) with what DeleteCaseRecords
    removes, their queued deliveries and their audit records; and the child's history, block,
    open case, closed-period notice, queued pushes and set-aside entries. Slack keeps what it
    shows."""

    number: CaseNumber
    cases: tuple[CaseNumber, ...]


@dataclass(frozen=True)
class TrimAudit:
    """Drop the audit records from before this time."""

    before: float


class SetAsideStream(StrEnum):
    """Where something waits for an operator. The values name it in the audit record."""

    INBOUND = "inbound"  # an event the router could not decide
    DELIVERIES = "delivery"  # a delivery the platform would not take (a child's words Slack refused)


@dataclass(frozen=True)
class TrimSetAside:
    """Drop what was set aside for an operator before this time, from both streams."""

    before: float


@dataclass(frozen=True)
class ReplaySetAside:
    """Put a set-aside entry back where it came from (an event into the inbound stream, to be
    decided again; a delivery into its lane, to be tried again) and out of the set-aside stream."""

    stream: SetAsideStream
    entry_id: str


@dataclass(frozen=True)
class DropSetAside:
    """Delete a set-aside entry."""

    stream: SetAsideStream
    entry_id: str


@dataclass(frozen=True)
class CloseCase:
    number: CaseNumber
    reason: CloseReason
    by: SlackUserId | None = None  # the Slack user, when a person closed it


@dataclass(frozen=True)
class ScheduleTimer:
    """Fire TimerFired(kind, case=case, instant=instant) at the given time, once: scheduling the
    same timer again changes nothing. case and instant are those its kind is named by (timer_args;
    checked when made)."""

    kind: TimerKind
    at: float
    _: KW_ONLY
    case: CaseNumber | None = None
    instant: int | None = None

    def __post_init__(self) -> None:
        check_timer_args(self.kind, self.case, self.instant)

    @property
    def member(self) -> str:
        """The timer's name in Redis."""
        return timer_member(self.kind, case=self.case, instant=self.instant)


@dataclass(frozen=True)
class MarkClosedNotice:
    """The child got the out-of-hours reply for this closed period."""

    child_id: LineUserId
    period: str
    until: float


@dataclass(frozen=True)
class MarkBusyNotified:
    number: CaseNumber


@dataclass(frozen=True)
class MarkArrivedClosed:
    number: CaseNumber


@dataclass(frozen=True)
class NoteCounsellorReply:
    number: CaseNumber
    at: float


@dataclass(frozen=True)
class NoteChildMessage:
    number: CaseNumber
    at: float


@dataclass(frozen=True)
class HoldCase:
    number: CaseNumber


@dataclass(frozen=True)
class NoteClosedArrival:
    number: CaseNumber
    at: float


@dataclass(frozen=True)
class ClearClosedArrivals:
    numbers: tuple[CaseNumber, ...]


@dataclass(frozen=True)
class AssignCounsellor:
    number: CaseNumber
    user: SlackUserId
    at: float


@dataclass(frozen=True)
class MarkUrgent:
    number: CaseNumber


@dataclass(frozen=True)
class NoteRisks:
    """The risk categories found on the case so far (all of them, not only the new ones)."""

    number: CaseNumber
    risks: frozenset[str]


@dataclass(frozen=True)
class BlockChild:
    """The child of this case is blocked: their messages are counted, not relayed or kept."""

    number: CaseNumber
    by: SlackUserId
    reason: str
    at: float


@dataclass(frozen=True)
class ChangeMember:
    """Someone joined or left a case channel: the roster of who may use the controls."""

    user: SlackUserId
    joined: bool
    channel: str | None = None  # another channel of the pool; None: SLACK_CHANNEL_ID


@dataclass(frozen=True)
class MarkBlockedRisk:
    number: CaseNumber


@dataclass(frozen=True)
class UnblockChild:
    """Lift the block of the case's child; the roots of `shown_on` stop showing it."""

    number: CaseNumber
    shown_on: tuple[CaseNumber, ...] = ()


@dataclass(frozen=True)
class NoteBlockReminder:
    """The supervisors were reminded, at this time, of the block made from this case."""

    number: CaseNumber
    at: float


@dataclass(frozen=True)
class CountBlockedMessage:
    number: CaseNumber


@dataclass(frozen=True)
class StartFlood:
    number: CaseNumber
    until: float


@dataclass(frozen=True)
class DeferMessage:
    """A child's message deferred during a flood cool-down: the child's words (or what they sent,
    described), unescaped, posted as the child's words when the cool-down ends; or one more
    sticker."""

    number: CaseNumber
    text: str | None  # None for a sticker (counted, not kept)
    dropped: bool = False  # a text beyond what a cool-down keeps: counted, not kept


@dataclass(frozen=True)
class ReleaseFlood:
    number: CaseNumber


@dataclass(frozen=True)
class Audit:
    """A record of a control action or an automatic flag: who (a Slack user or "auto"), what,
    which case, and why. Kept for the policy's retention period."""

    case: CaseNumber | None
    actor: str  # a Slack user ID, AUTO, or the operator who ran a `bridge set-aside` command
    action: str
    reason: str = ""
    via: ControlVia | None = None  # None: no control request (an automatic flag)


Effect = (
    OpenCase
    | NoteRecent
    | EraseChildIds
    | DeleteCaseRecords
    | ForgetChild
    | TrimAudit
    | TrimSetAside
    | ReplaySetAside
    | DropSetAside
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
    | NoteRisks
    | BlockChild
    | UnblockChild
    | MarkBlockedRisk
    | NoteBlockReminder
    | ChangeMember
    | CountBlockedMessage
    | StartFlood
    | DeferMessage
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
