"""A child adds the account (the welcome) or blocks it (their open case ends)."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.case import (
    Block,
    Case,
    CaseStatus,
    CloseReason,
)
from bridge.core.deliveries import (
    LineReply,
    PostRole,
    ThreadPost,
    retry_key,
)
from bridge.core.effects import (
    NOTHING,
    CloseCase,
    Decision,
)
from bridge.core.events import ChildFollowed
from bridge.core.policy import Policy
from bridge.core.root import root_update


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
    note = ThreadPost(case=case.number, text=policy.render_parts("unfollow_note", case=case.number), role=PostRole.NOTE)
    closed = replace(case, status=CaseStatus.CLOSED, closed_at=now, closed_reason=CloseReason.UNFOLLOWED)
    root = root_update(closed, policy)
    return Decision(deliveries=(note, root), effects=(CloseCase(case.number, CloseReason.UNFOLLOWED),))
