"""What follows a delivery to LINE: the delivered mark, or the warning and a note saying why."""

from __future__ import annotations

from bridge.core.deliveries import (
    Delivery,
    LinePush,
    LineReply,
    PostRole,
    Reaction,
    ThreadPost,
)
from bridge.core.parts import Quoted
from bridge.core.policy import Policy

DELIVERED_REACTION = "white_check_mark"


FAILED_REACTION = "warning"


def after_line_delivered(push: LinePush | LineReply) -> tuple[Delivery, ...]:
    """What follows a push LINE accepted: the delivered mark once the last part is in."""
    if isinstance(push, LinePush) and push.final_part and push.slack_ts and push.case is not None:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=DELIVERED_REACTION),)
    return ()


def after_line_failed(push: LinePush | LineReply, reason: str, policy: Policy) -> tuple[Delivery, ...]:
    """What follows a push that finally failed: a warning mark and a note saying why."""
    if push.case is None:
        return ()
    note = ThreadPost(
        case=push.case, text=policy.render_parts("delivery_failed_note", reason=Quoted(reason)), role=PostRole.NOTE
    )
    if isinstance(push, LinePush) and push.slack_ts:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=FAILED_REACTION), note)
    return (note,)
