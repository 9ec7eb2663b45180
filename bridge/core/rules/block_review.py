"""Blocks under review: a block never ends by itself, so one that has stood for the policy's
block_review_days is pointed out to the supervisors, and again as often, until one lifts it."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.core.alerts import supervisor_mention, thread_link
from bridge.core.case import Block, Case
from bridge.core.clock import local
from bridge.core.deliveries import ChannelPost, ChannelTarget, Delivery
from bridge.core.effects import NOTHING, Decision, Effect, NoteBlockReminder
from bridge.core.parts import Quoted
from bridge.core.policy import Policy


def on_block_review(blocks: Sequence[tuple[Block, Case | None]], policy: Policy, *, now: float) -> Decision:
    """Each block (with the case it was made from, as loaded) that has stood block_review_days
    since it was made, or since the supervisors were last reminded of it, is pointed out in the
    supervisors' channel: the case, since when, how many days, the reason the supervisor gave
    (never the child's words), a link to the thread. A block whose case is not known is left
    alone (there would be nowhere to note the reminder, and no case to unblock by)."""
    period = policy.block_review_days * 86400
    if not period:
        return NOTHING
    deliveries: list[Delivery] = []
    effects: list[Effect] = []
    for block, case in blocks:
        if case is None or case.number != block.case:
            continue
        last = max(block.at, case.block_reminded_at or 0.0)
        if now < last + period:
            continue
        text = policy.render_parts(
            "block_review_reminder",
            mention=supervisor_mention(policy),
            case=case.number,
            since=local(block.at, policy).strftime("%Y/%m/%d"),
            days=int((now - block.at) // 86400),
            reason=Quoted(block.reason),
            link=thread_link(case),
        )
        deliveries.append(ChannelPost(text=text, target=ChannelTarget.SUPERVISORS))
        effects.append(NoteBlockReminder(case.number, now))
    return Decision(tuple(deliveries), tuple(effects))
