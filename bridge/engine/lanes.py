"""Which lane a delivery joins: towards Slack one lane per case (and one per channel), towards
LINE one per child (across cases), so order holds both ways while cases go in parallel."""

from __future__ import annotations

from collections.abc import Callable

from bridge.core.deliveries import ChannelPost, Delivery, Ephemeral, LinePush, LineReply
from bridge.core.ids import LineUserId


def case_lane(number: int) -> str:
    """The lane of a case's deliveries towards Slack."""
    return f"slack:{number}"


def child_lane(child_key: str) -> str:
    """The lane of a child's deliveries towards LINE (by pseudonym)."""
    return "line:" + child_key


def lane_for(delivery: Delivery, child_key: Callable[[LineUserId], str]) -> str:
    """Towards Slack, one lane per case (and one for the channel itself); towards LINE, one
    lane per child (across cases)."""
    if isinstance(delivery, LinePush | LineReply):
        return child_lane(child_key(delivery.to))
    if isinstance(delivery, ChannelPost):
        return f"slack:{delivery.target}"
    if isinstance(delivery, Ephemeral) and delivery.case is None:
        return "slack:commands"
    assert delivery.case is not None
    return case_lane(delivery.case)
