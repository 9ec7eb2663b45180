"""A case: one consultation and its Slack thread, known in Slack only by its number."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(StrEnum):
    UNFOLLOWED = "unfollowed"
    IDLE = "idle"
    COUNSELLOR = "counsellor"
    BLOCKED = "blocked"
    UNANSWERED = "unanswered"  # nobody answered within the retention policy's hours


class CaseAction(StrEnum):
    """What someone in the case channel can ask for: an action on a case (a root button, a slash
    command, the message shortcut), or the list of open cases. The values are Slack's too (button
    values, the commands' names) and are kept in audit records and queued requests and deliveries:
    do not change them."""

    HOLD = "hold"  # stop the automatic close
    CLOSE = "close"
    ESCALATE = "escalate"
    BLOCK = "block"
    UNBLOCK = "unblock"
    CASES = "cases"  # the list of open cases (/cases), not an action on one case


@dataclass(frozen=True)
class Case:
    """A consultation. The number is the only handle Slack ever sees."""

    number: CaseNumber
    status: CaseStatus
    child_id: LineUserId  # "" once erased after the retention period
    opened_at: float
    thread_ts: ThreadTs | None = None
    closed_at: float | None = None
    closed_reason: str | None = None
    arrived_closed: bool = False  # opened outside the hours
    counsellor: SlackUserId | None = None  # the Slack user who first answered
    counsellor_since: float | None = None
    last_counsellor_at: float | None = None  # the latest counsellor reply relayed
    last_child_at: float | None = None  # the latest message from the child
    hold: bool = False  # a counsellor stopped the automatic close
    busy_notified: bool = False
    earlier: tuple[CaseNumber, ...] = ()  # the same child's earlier cases, oldest first
    closed_by: SlackUserId | None = None  # the Slack user who closed or blocked it
    urgent: bool = False  # escalated, or risk words were found
    blocked: bool = False  # its child was blocked through this case (and is still)
    blocked_count: int = 0  # messages the blocked child sent since (content not kept)
    flood_until: float | None = None  # a flood's cool-down: the child's messages are deferred until it ends
    deferred_texts: int = 0  # texts this cool-down kept so far
    blocked_risk: bool = False  # the supervisors heard of risk words from the blocked child
    risks: frozenset[str] = frozenset()  # the risk categories found so far (each alerts once)
    block_reminded_at: float | None = None  # the supervisors were last reminded of its block
    # The channel its thread is in, one of a pool of case channels (bridge/core/channels.py);
    # None: SLACK_CHANNEL_ID (every case without a pool, and every case opened before pools).
    channel: str | None = None

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

    case: CaseNumber
    by: SlackUserId
    at: float
    reason: str


# How many of a child's earlier case numbers a new case's root shows (and the bridge keeps).
EARLIER_CASES_SHOWN = 10


# A counsellor who replied this recently is still talking with the child, even after closing
# time (the published guideline: about an hour per consultation): no automatic reply then.
LIVE_CONVERSATION_S = 3600


def conversation_is_live(case: Case, now: float) -> bool:
    return case.last_counsellor_at is not None and now - case.last_counsellor_at < LIVE_CONVERSATION_S


def parse_case_number(text: str) -> CaseNumber | None:
    """'12', '#12' or '＃１２' -> 12; anything else -> None."""
    cleaned = text.strip().translate(_FULL_WIDTH).lstrip("#")
    # isascii: str.isdigit() also accepts superscripts such as "²", which int() refuses.
    return CaseNumber(int(cleaned)) if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 9 else None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９＃", "0123456789#")
