"""How fast the bridge posts into a Slack channel, and which deliveries count.

Slack documents about one chat.postMessage per second per channel, with short bursts; the
bridge keeps under that on its own side (bridge/adapters/redis/buckets.py) instead of learning
it from 429s. Every delivery that posts a message into a channel (a case's root, a thread post,
a channel post) carries its channel's *pace tag* in its lane item; a root update, a reaction or
an ephemeral message (other methods, with other limits) carries none and never waits. With a
pool of case channels each channel has its own bucket, and a case's post waits for its own
channel's (bridge/core/channels.py): the tag names the channel the case's thread is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    Delivery,
    Ephemeral,
    LinePush,
    LineReply,
    Reaction,
    RootPost,
    RootUpdate,
    ThreadPost,
)

__all__ = ["Pacing"]


@dataclass(frozen=True)
class Pacing:
    """Posts per second into one channel and the burst allowed (per_second 0: no pacing), and
    the channels the deliveries post into."""

    per_second: float
    burst: int
    case_channel: str
    supervisor_channel: str

    def __post_init__(self) -> None:
        if self.per_second < 0 or self.burst < 1:
            raise ValueError("pacing needs per_second >= 0 and burst >= 1")

    def channel_of(self, delivery: Delivery, case_channel: str | None = None) -> str | None:
        """The channel a delivery posts a message into (chat.postMessage), or None. case_channel:
        the pool's channel of the case it is about (None: SLACK_CHANNEL_ID)."""
        match delivery:
            case RootPost():
                return delivery.channel or case_channel or self.case_channel
            case ThreadPost():
                return delivery.channel or case_channel or self.case_channel
            case ChannelPost():
                return self.supervisor_channel if delivery.target is ChannelTarget.SUPERVISORS else self.case_channel
            case RootUpdate() | Reaction() | Ephemeral() | LinePush() | LineReply():
                return None
            case _:
                assert_never(delivery)

    def tag(self, delivery: Delivery, case_channel: str | None = None) -> str | None:
        """The pace tag of a delivery's lane item: "<interval ms>:<tolerance ms>:<channel>"."""
        channel = self.channel_of(delivery, case_channel)
        if channel is None or self.per_second <= 0:
            return None
        interval = max(1, round(1000 / self.per_second))
        return f"{interval}:{interval * (self.burst - 1)}:{channel}"
