"""Which channel a case's thread is in: the case channel, or one of a pool of them.

Slack takes about one message a second from a bot into one channel, so when many children write
at once their threads can be spread over a pool of case channels (the policy's case_channels,
SLACK_CHANNEL_ID first). A case's channel is chosen when it opens, in turn by its number, and kept
on the case; it never moves. Without a pool (or with a pool of one) a case names no channel and
its thread is in SLACK_CHANNEL_ID, as every case was before pools: one channel is exactly the
bridge it was. The channels are opaque names to the core; only the Slack adapter knows them.
"""

from __future__ import annotations

from bridge.core.case import Case
from bridge.core.ids import CaseNumber
from bridge.core.policy import Policy


def pool_of(policy: Policy) -> tuple[str, ...]:
    """The pool cases are spread over, SLACK_CHANNEL_ID first; () when there is none to spread
    over (no pool, or one channel)."""
    return policy.case_channels if len(policy.case_channels) > 1 else ()


def channel_for_new_case(number: CaseNumber, policy: Policy) -> str | None:
    """The channel a new case's thread goes in: the pool's channels in turn, by case number (the
    first case in the first channel); None without a pool (SLACK_CHANNEL_ID, named by no channel)."""
    pool = pool_of(policy)
    return pool[(number - 1) % len(pool)] if pool else None


def channel_of(case: Case, default: str) -> str:
    """The channel a case's thread is in (default: SLACK_CHANNEL_ID, for a case that names none)."""
    return case.channel or default


def is_pool_channel(channel: str, policy: Policy, *, default: str) -> bool:
    """Whether cases open in this channel: SLACK_CHANNEL_ID, or a channel of the pool."""
    return channel == default or channel in pool_of(policy)
