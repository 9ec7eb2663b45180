"""What to do after a delivery attempt: the retry rules, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge.core.deliveries import Delivery, LineReply, PostRole, RootPost, ThreadPost

# A reply token lives about a minute after its event; leave a margin for the call itself.
REPLY_TOKEN_FRESH_MS = 50_000
FIRST_BACKOFF_S = 0.5
# Each failure of the same delivery waits this many times longer than the one before (gRPC's
# connection backoff uses the same 1.6). Failures under load are mostly independent (one call in
# ten failing, not Slack being down), and a case's later messages wait behind its head: doubling,
# five failures in a row cost 15.5 s before the sixth try; at 1.6, 7.9 s. A platform that is
# really down still reaches the cap within about three minutes, and its 429s pause it outright.
BACKOFF_GROWTH = 1.6
# The longest a Retry-After is waited for: the header is the platform's bytes, and a huge value
# (by mistake or not) must not pause every delivery to that platform for days. Slack's and
# LINE's are seconds.
RETRY_AFTER_MAX_S = 300.0


class OutcomeStatus(StrEnum):
    """How an attempt ended, in the retry rules' terms."""

    DELIVERED = "delivered"  # the platform took it
    RETRY = "retry"  # it may take it later (5xx, 429, no answer)
    FAILED = "failed"  # it refused it
    REPLY_TOKEN_REJECTED = "reply_token_rejected"  # LINE refused the reply token (a push may do)


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as an adapter classified the platform's answer."""

    status: OutcomeStatus
    reason: str = ""
    retry_after: float | None = None  # the platform asked us to wait (429 Retry-After)
    # No answer came (timeout, dropped connection): the platform may still have acted on it.
    ambiguous: bool = False
    # The platform answered 429 (too many requests); counted by the worker's metrics.
    rate_limited: bool = False

    @property
    def delivered(self) -> bool:
        return self.status is OutcomeStatus.DELIVERED

    @property
    def failed(self) -> bool:
        return self.status is OutcomeStatus.FAILED


DELIVERED = Outcome(OutcomeStatus.DELIVERED)


@dataclass(frozen=True)
class RetryRules:
    give_up_after_s: float
    max_backoff_s: float
    unanswered_wait_s: float  # after an unanswered request, wait at least this long


class Action(StrEnum):
    COMPLETE = "complete"  # delivered: remove it, enqueue what follows
    RETRY = "retry"  # try the same delivery again after delay_s
    PUSH_INSTEAD = "push_instead"  # the reply token was refused: push the same texts now
    FAIL = "fail"  # give up and report where a person looks
    SET_ASIDE = "set_aside"  # a child's words Slack will not take: keep them for an operator


@dataclass(frozen=True)
class Next:
    action: Action
    delay_s: float = 0.0
    pause_platform_s: float | None = None  # pause every lane to the platform this long
    # The attempt failed (an error, 5xx, no answer): counted among the failures the next
    # backoff grows with. An attempt the platform answered with when to come back is not.
    failed: bool = False


def use_reply_token(delivery: LineReply, *, now_ms: int, attempts: int) -> bool:
    """Reply (free, and answers this event) only on the first try while the token is fresh."""
    return delivery.reply_token is not None and attempts == 1 and now_ms - delivery.event_ms < REPLY_TOKEN_FRESH_MS


def is_childs_words(delivery: Delivery) -> bool:
    return isinstance(delivery, ThreadPost) and delivery.role is PostRole.CHILD


def is_never_given_up(delivery: Delivery) -> bool:
    """A child's words, and the root of a new case (which they wait behind in its lane)."""
    return is_childs_words(delivery) or isinstance(delivery, RootPost)


def next_step(
    delivery: Delivery, outcome: Outcome, *, failures: int, age_s: float, rules: RetryRules, jitter: float = 1.0
) -> Next:
    """Decide what follows an attempt. A child's words are never given up on while Slack
    may still take them; everything else stops retrying once it is rules.give_up_after_s old
    (counted in time since it was enqueued, however its attempts ended).

    failures: the delivery's earlier attempts that failed (Next.failed). The backoff grows with
    them only: 0.5 s for the first failure, then BACKOFF_GROWTH times longer for each, at most
    rules.max_backoff_s. An attempt the
    platform answered with when to come back (a 429's Retry-After) waits that long, pausing the
    platform, and does not count: a burst of 429s does not make the next failure wait as if it
    were the n-th in a row. (A 429 without Retry-After says nothing of when, so it backs off as a
    failure.) Nor does an attempt cut short by its worker's death, which never settles."""
    if outcome.delivered:
        return Next(Action.COMPLETE)
    if outcome.status is OutcomeStatus.REPLY_TOKEN_REJECTED and isinstance(delivery, LineReply):
        return Next(Action.PUSH_INSTEAD)
    if outcome.status is OutcomeStatus.RETRY and (is_never_given_up(delivery) or age_s < rules.give_up_after_s):
        if outcome.retry_after is not None:
            wait = min(max(0.0, outcome.retry_after), RETRY_AFTER_MAX_S)
            return Next(Action.RETRY, delay_s=wait, pause_platform_s=wait)
        delay = min(rules.max_backoff_s, FIRST_BACKOFF_S * BACKOFF_GROWTH ** min(failures, 32)) * jitter
        if outcome.ambiguous:
            # The platform may still be working on it; give it as long again before looking
            # for it (Slack) or resending with the same retry key (LINE).
            delay = max(delay, rules.unanswered_wait_s)
        return Next(Action.RETRY, delay_s=delay, failed=True)
    if is_childs_words(delivery):
        return Next(Action.SET_ASIDE)
    return Next(Action.FAIL)
