"""A child writes: to a blocked account, to their open case, or to a case that opens now.

Pure decisions. The router loads what the bridge knows of the child (a ChildState) with reads
only; this module decides everything that used to be settled while writing: whether the child is
blocked, whether a case opens and with which number, whether it opened while the service was
closed, which earlier cases its root names, and where it stands in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.core.case import EARLIER_CASES_SHOWN, Block, Case, CaseStatus, Queue
from bridge.core.channels import channel_for_new_case
from bridge.core.deliveries import Delivery, RootPost, RootUpdate
from bridge.core.effects import Decision, NoteRecent, OpenCase
from bridge.core.events import ChildMessage
from bridge.core.ids import CaseNumber
from bridge.core.policy import Policy
from bridge.core.root import root_update
from bridge.core.rules.blocks import on_blocked_message
from bridge.core.rules.child_message import on_child_message
from bridge.core.rules.floods import Recent


@dataclass(frozen=True)
class ChildState:
    """What the bridge knows of the child writing now, as loaded before deciding."""

    open_case: Case | None  # the child's open case, if any
    block: Block | None  # the child's block, if any
    blocked_case: Case | None  # the case the block was made from (where its messages are counted)
    history: tuple[CaseNumber, ...]  # the child's latest case numbers, oldest first
    closed_notice: str | None  # the closed period the child last got the automatic reply for
    recent: Recent  # the open case's messages within the flood window, before this one
    last_number: int  # the highest case number given so far
    open_cases: int  # open cases of all children
    unanswered: int  # open cases no counsellor has answered yet


def on_child_writes(message: ChildMessage, child: ChildState, policy: Policy, *, now: float) -> Decision:
    """Decide a child's message from what the bridge knows of the child.

    A blocked child's message is only counted. Without an open case, one opens: the next
    number, opened while closed or not, naming the child's earlier cases. Its root message
    comes first in its lane, already showing the state the rest of the decision leads to.
    """
    if child.block is not None:
        return on_blocked_message(message, child.blocked_case, policy)
    closed = not policy.schedule.is_open(datetime.fromtimestamp(now, policy.timezone))
    sticker = message.media is not None and message.media.type == "sticker"
    case = child.open_case
    if case is not None:
        recent = Recent(child.recent.messages + 1, child.recent.stickers + int(sticker))
        decision = on_child_message(
            message,
            case,
            policy,
            now=now,
            created=False,
            closed_notice=child.closed_notice if closed else None,
            recent=recent,
        )
        noted = NoteRecent(case.number, now, sticker, policy.flood_window_seconds)
        return Decision(decision.deliveries, (noted, *decision.effects))
    number = CaseNumber(child.last_number + 1)
    earlier = child.history[-EARLIER_CASES_SHOWN:]
    channel = channel_for_new_case(number, policy)
    case = Case(
        number=number,
        status=CaseStatus.OPEN,
        child_id=message.child_id,
        opened_at=now,
        arrived_closed=closed,
        earlier=earlier,
        channel=channel,
    )
    opened = OpenCase(
        number=number,
        child_id=message.child_id,
        opened_at=now,
        arrived_closed=closed,
        earlier=earlier,
        history=(*child.history, number)[-EARLIER_CASES_SHOWN:],
        channel=channel,
    )
    queue = None if closed else Queue.of(open_cases=child.open_cases + 1, unanswered_before=child.unanswered)
    decision = on_child_message(
        message,
        case,
        policy,
        now=now,
        created=True,
        queue=queue,
        closed_notice=child.closed_notice if closed else None,
        recent=Recent(1, int(sticker)),
    )
    noted = NoteRecent(number, now, sticker, policy.flood_window_seconds)
    return Decision(_root_first(case, decision.deliveries, policy), (opened, noted, *decision.effects))


def _root_first(case: Case, deliveries: tuple[Delivery, ...], policy: Policy) -> tuple[Delivery, ...]:
    """A new case's deliveries with its root post first, showing the latest state decided."""
    updates = [d for d in deliveries if isinstance(d, RootUpdate)]
    latest = updates[-1] if updates else root_update(case, policy)
    root = RootPost(
        case=case.number, text=latest.text, buttons=latest.buttons, opened_at=case.opened_at, channel=case.channel
    )
    return (root, *(d for d in deliveries if not isinstance(d, RootUpdate)))
