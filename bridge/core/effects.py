"""The state changes a decision keeps, and the Decision itself: deliveries and effects,
committed together in one step by the router."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.case import (
    CloseReason,
)
from bridge.core.deliveries import (
    Delivery,
)
from bridge.core.events import TimerKind


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
class DeferMessage:
    """A child's message deferred during a flood cool-down: the child's words (or what they sent,
    described), unescaped, posted as the child's words when the cool-down ends; or one more
    sticker."""

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
