"""The deliverers: they send what the router decided, and nothing else.

A deliverer claims a due lane (one delivery at a time per lane, so order holds per case and per
child), makes the API call the delivery stands for and settles it: complete, retry later with
backoff, or fail with a report where a person looks. Any worker may deliver. A delivery carries
all it needs; the only thing a deliverer learns is a new case's Slack thread, from the answer
to its root post, which it records for the deliveries after it in the lane. Texts for Slack come
as the core made them (mentions, links, the child's words as parts) and are rendered to mrkdwn
here, at send time (bridge/adapters/slack/render.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import random
import time
from typing import assert_never

from redis.exceptions import RedisError

from bridge import core
from bridge.adapters.line.client import LineClient
from bridge.adapters.redis.codec import Claim, now_ms
from bridge.adapters.redis.connect import RedisClient, subscriber
from bridge.adapters.redis.lanes import FollowUp, Outlook
from bridge.adapters.redis.store import Store
from bridge.adapters.slack.client import SlackClient
from bridge.adapters.slack.render import words_of
from bridge.adapters.slack.views import child_blocks, root_blocks_of
from bridge.core.deliveries import (
    ChannelPost,
    Delivery,
    Ephemeral,
    LinePush,
    LineReply,
    PostRole,
    Reaction,
    RootPost,
    RootUpdate,
    ThreadPost,
    from_payload,
    to_payload,
)
from bridge.core.policy import Policy
from bridge.core.retry import (
    DELIVERED,
    Action,
    Next,
    Outcome,
    OutcomeStatus,
    RetryRules,
    next_step,
    use_reply_token,
)
from bridge.engine.errors import safe_trace
from bridge.engine.handoff import HandOffs
from bridge.engine.lanes import lane_for
from bridge.engine.pacing import Pacing
from bridge.engine.slack_posts import SlackPosts, joins
from bridge.metrics.worker import WorkerMetrics

log = logging.getLogger("bridge.worker")

# An idle deliverer looks at the lanes at least this often (a wake-up comes sooner when anything
# is enqueued, and it waits no longer than until the earliest lane is due).
IDLE_S = 10.0
# How often a deliverer asks Redis again to settle an attempt that ended while Redis was away.
SETTLE_AGAIN_S = 0.5
# How far before an unanswered call the lanes it may have leased are looked for (other workers'
# clocks, which push a leased lane's next look, may run behind this one's).
UNANSWERED_MARGIN_MS = 10_000


class Deliverers(SlackPosts, HandOffs):
    """The deliverers of one worker process, sharing its clients."""

    def __init__(
        self,
        *,
        name: str,
        policy: Policy,
        redis: RedisClient,
        store: Store,
        line: LineClient,
        slack: SlackClient,
        supervisor_channel: str,
        lease_ms: int,
        retry_rules: RetryRules,
        pacing: Pacing | None = None,
    ) -> None:
        self.name = name
        self.metrics = WorkerMetrics()  # the worker puts its own here (one registry per worker)
        self.policy = policy
        self.redis = redis
        self.store = store
        self.line = line
        self.slack = slack
        self.supervisor_channel = supervisor_channel
        self.lease_ms = lease_ms
        self.retry_rules = retry_rules
        self.pacing = pacing  # the channel buckets of follow-up posts
        self.stopping = asyncio.Event()
        # Idle deliverers wait here; a wake-up rouses one, and a deliverer that found work
        # rouses the next, so the number awake follows the work instead of the pool size.
        self._idle: collections.deque[asyncio.Event] = collections.deque()
        self._init_handoffs()  # the lanes the router's commits hand to this process (handoff.py)
        # Own tokens with a call that may have leased a lane and went unanswered (Redis went
        # away), and from when (ms): their next claim first releases what they hold unknowingly.
        self._unanswered: dict[str, int] = {}

    def stop(self) -> None:
        self.stopping.set()
        while self._idle:
            self._idle.popleft().set()

    def wake_all(self) -> None:
        """Rouse every idle deliverer to look for due lanes (another worker died)."""
        while self._idle:
            self._idle.popleft().set()

    def _wake_one(self) -> None:
        if self._idle:
            self._idle.popleft().set()

    async def listen_for_wakeups(self) -> None:
        """Wake idle deliverers as soon as anything is enqueued anywhere."""
        while not self.stopping.is_set():
            try:
                async with await subscriber(self.redis) as pubsub:
                    await pubsub.subscribe(self.store.keys.wake_channel)
                    # Waits for messages without polling; the task is cancelled when the worker stops.
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("wake-up subscription lost; resubscribing")
                await asyncio.sleep(1)

    async def deliver_forever(self, index: int) -> None:
        own = f"{self.name}:{index}"
        token = own  # the lease token of the work in hand: our own, or the router's hand-off
        work: list[Claim] = []
        outlook: Outlook | None = None
        while not self.stopping.is_set():
            # Listed as idle before looking for work, so a wake-up that comes meanwhile counts.
            wake = asyncio.Event()
            self._idle.append(wake)
            asked = now_ms()
            try:
                if not work and self._handed:
                    handed = await self._next_handed()
                    if handed is not None:
                        work, token = [handed[0]], handed[1]
                if not work and outlook is None:  # (a completion that claimed nothing said what is due)
                    token = own
                    work, outlook = await self.store.claim_with_outlook(
                        token=own, lease_ms=self.lease_ms, max_lanes=1, release_since=self._unanswered.get(own)
                    )
                    self._unanswered.pop(own, None)
                if work:  # (when more lanes are due, the claim woke another deliverer)
                    self._forget(wake)
                    # Completing claims the next due lane for the same token.
                    work, outlook = await self.deliver(work.pop(0), token)
                    continue
                wait = outlook.next_due_in if outlook is not None else None
                outlook = None  # look again after the wait
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=min(wait if wait is not None else IDLE_S, IDLE_S))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("deliverer lost Redis (%s); pausing", type(exc).__name__)
                work, outlook = [], None
                self._unanswered.setdefault(own, asked - UNANSWERED_MARGIN_MS)
                await asyncio.sleep(1)
            except Exception as exc:
                log.error("deliverer error; pausing\n%s", safe_trace(exc))
                work, outlook = [], None
                self._unanswered.setdefault(own, asked - UNANSWERED_MARGIN_MS)  # (its work dropped)
                await asyncio.sleep(1)
            finally:
                self._forget(wake)

    def _forget(self, wake: asyncio.Event) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(wake)

    async def deliver(self, claim: Claim, token: str) -> tuple[list[Claim], Outlook | None]:
        """Make one delivery and settle it: complete, retry later, or fail with a report.

        Completing leases the next due lane in the same step: returns it (if any), and what
        else is due."""
        try:
            delivery = from_payload(claim.payload)
        except (TypeError, ValueError) as exc:
            log.error("undeliverable item=%s lane=%s; set aside\n%s", claim.item_id, claim.lane, safe_trace(exc))
            await self.store.set_aside_delivery(claim, token=token, why=f"undeliverable: {type(exc).__name__}")
            self.metrics.attempted(claim.lane, Action.SET_ASIDE)
            return [], None
        # The lease is renewed only if the attempt outlasts a third of it (most take milliseconds).
        attempt_over = asyncio.Event()
        keeper: asyncio.Task[None] | None = None

        def keep_lease() -> None:
            nonlocal keeper
            keeper = asyncio.create_task(self._keep_lease(claim, token, attempt_over))

        starting = asyncio.get_running_loop().call_later(self.lease_ms / 3000, keep_lease)
        carried: list[str] = []  # the items behind the head that its post carried too
        followups: tuple[Delivery, ...] = ()
        try:
            if joins(delivery) and claim.thread_ts is not None:
                assert isinstance(delivery, ThreadPost)
                outcome, carried = await self.post_children(claim, delivery, claim.thread_ts)
            else:
                outcome, followups = await self._attempt(delivery, claim)
        except (RedisError, OSError) as exc:
            outcome, followups = Outcome(OutcomeStatus.RETRY, f"redis: {type(exc).__name__}", ambiguous=True), ()
        except Exception as exc:
            # A bug must not leave the lane leased forever: back off like any failure.
            log.error("delivery attempt raised item=%s\n%s", claim.item_id, safe_trace(exc))
            outcome, followups = Outcome(OutcomeStatus.RETRY, f"bridge error: {type(exc).__name__}"), ()
        finally:
            attempt_over.set()
            starting.cancel()
            if keeper is not None:
                await keeper  # finished before the lane is settled, so it cannot renew afterwards
        step = next_step(
            delivery,
            outcome,
            failures=claim.failures,
            age_s=(time.time() * 1000 - claim.enqueued_ms) / 1000,
            rules=self.retry_rules,
            jitter=random.uniform(0.8, 1.2),
        )
        fields = f"item={claim.item_id} kind={delivery.kind} attempts={claim.attempts} failures={claim.failures}"
        # Settled as soon as Redis answers: an attempt that ended while Redis was away (restarted,
        # unreachable) would otherwise leave its lane leased by this living worker, whose fresh
        # heartbeat keeps every other worker off it, until the lease ran out. Every settling step
        # is safe to repeat: each checks the head item or the lease first.
        waited = False
        while True:
            asked = now_ms()
            try:
                settled = await self._settle(claim, token, delivery, step, outcome, followups, carried, fields)
            except (RedisError, OSError) as exc:
                # (its completion may have leased the next lane unanswered; a handed lane's token
                # is its own too, handed_token: no other deliverer holds anything with it)
                self._unanswered.setdefault(token, asked - UNANSWERED_MARGIN_MS)
                if not waited:
                    log.warning("delivery not settled: redis unreachable (%s); again %s", type(exc).__name__, fields)
                waited = True
                await asyncio.sleep(SETTLE_AGAIN_S)
                continue
            if waited:
                log.info("delivery settled once redis answered %s", fields)
            return settled

    async def _settle(
        self,
        claim: Claim,
        token: str,
        delivery: Delivery,
        step: Next,
        outcome: Outcome,
        followups: tuple[Delivery, ...],
        carried: list[str],
        fields: str,
    ) -> tuple[list[Claim], Outlook | None]:
        """Record how the attempt ended: complete it (claiming the next due lane), retry it later,
        set it aside or fail it, releasing the lane."""
        if step.action is Action.COMPLETE:
            _, claims, outlook = await self.store.complete_and_claim(
                claim,
                token=token,
                followups=await self._lane_items(claim, followups),
                lease_ms=self.lease_ms,
                carried=carried,
                release_since=self._unanswered.get(token),
            )
            self._unanswered.pop(token, None)
            log.info("delivered %s", fields)
            self.metrics.attempted(claim.lane, step.action, rate_limited=outcome.rate_limited)
            return claims, outlook
        if step.action is Action.PUSH_INSTEAD:
            assert isinstance(delivery, LineReply)
            replacement = to_payload(dataclasses.replace(delivery, reply_token=None))
            await self.store.retry_later(claim, token=token, delay_s=0, replacement=replacement)
            log.info("reply token refused; pushing instead %s", fields)
        elif step.action is Action.RETRY:
            if step.pause_platform_s is not None:
                await self.store.pause_platform(claim.lane.split(":")[0], step.pause_platform_s)
            await self.store.retry_later(claim, token=token, delay_s=step.delay_s, failed=step.failed)
            log.warning("delivery retry %s in=%.1fs reason=%s", fields, step.delay_s, outcome.reason)
        elif step.action is Action.SET_ASIDE:
            await self.store.set_aside_delivery(claim, token=token, why=outcome.reason)
            log.error("child message set aside for an operator %s reason=%s", fields, outcome.reason)
        else:
            failed = self._after_failure(delivery, outcome.reason)
            await self.store.complete(claim, token=token, followups=await self._lane_items(claim, failed))
            log.error("delivery failed %s reason=%s", fields, outcome.reason)
        self.metrics.attempted(claim.lane, step.action, rate_limited=outcome.rate_limited)
        return [], None

    async def _keep_lease(self, claim: Claim, token: str, attempt_over: asyncio.Event) -> None:
        """Renew the lane's lease (now, then every third of it) while an attempt runs, so no
        other worker takes it over."""
        while not attempt_over.is_set():
            try:
                renewed = await self.store.renew_lane_lease(claim.lane, token=token, lease_ms=self.lease_ms)
            except (RedisError, OSError) as exc:
                log.warning("lane lease renewal failed item=%s error=%s", claim.item_id, type(exc).__name__)
                renewed = True  # not known to be lost: try again after the wait
            if not renewed:
                log.warning("lane lease lost item=%s", claim.item_id)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attempt_over.wait(), timeout=self.lease_ms / 3000)

    def _after_failure(self, delivery: Delivery, reason: str) -> tuple[Delivery, ...]:
        if isinstance(delivery, LinePush | LineReply):
            return core.after_line_failed(delivery, reason, self.policy)
        return ()

    async def _lane_items(self, claim: Claim, followups: tuple[Delivery, ...]) -> list[FollowUp]:
        """The follow-ups' lane items; a post into a case's thread is paced by its case's channel
        (read from the case: only a failed LINE push has one, a note into the thread)."""
        items = []
        for i, d in enumerate(followups):
            pace = None
            if self.pacing is not None:
                channel = await self.store.case_channel(d.case) if isinstance(d, ThreadPost) and not d.channel else None
                pace = self.pacing.tag(d, channel)
            items.append(FollowUp(lane_for(d, self.store.child_key), f"{claim.item_id}.f{i}", to_payload(d), pace))
        return items

    async def _attempt(self, delivery: Delivery, claim: Claim) -> tuple[Outcome, tuple[Delivery, ...]]:
        """Make the API call a delivery stands for. Every delivery type has a case: mypy fails
        on one without."""
        match delivery:
            case LinePush():
                outcome = await self.line.push(delivery.to, delivery.texts, delivery.retry_key)
                return outcome, core.after_line_delivered(delivery) if outcome.delivered else ()
            case LineReply():
                if use_reply_token(delivery, now_ms=int(time.time() * 1000), attempts=claim.attempts):
                    assert delivery.reply_token is not None
                    return await self.line.reply(delivery.reply_token, delivery.texts), ()
                return await self.line.push(delivery.to, delivery.texts, delivery.retry_key), ()
            case RootPost():
                return await self.post_root(delivery, claim), ()
            case ThreadPost():
                # A thread the delivery names (its case's record gone) is in the channel it names.
                ts, channel = (
                    (delivery.thread_ts, delivery.channel) if delivery.thread_ts else (claim.thread_ts, claim.channel)
                )
                if ts is None:
                    return Outcome(OutcomeStatus.FAILED, "the case has no thread"), ()
                # The child's words go under the bridge's label, as plain text.
                blocks = child_blocks(self.policy, words_of(delivery.text)) if delivery.role is PostRole.CHILD else None
                text = self.mrkdwn(delivery.text)
                posted = await self.post_once(
                    claim, text=text, thread_ts=ts, case=delivery.case, channel=channel, blocks=blocks
                )
                return posted, ()
            case RootUpdate():
                if claim.thread_ts is None:
                    return DELIVERED, ()  # no root to update: its post failed and was reported
                text = self.mrkdwn(delivery.text)
                blocks = root_blocks_of(self.policy, delivery.case, text, delivery.buttons)
                return await self.slack.update(ts=claim.thread_ts, text=text, blocks=blocks, channel=claim.channel), ()
            case ChannelPost():
                return await self.post_to_channel(delivery, claim), ()
            case Reaction():
                return await self.slack.react(ts=delivery.message_ts, name=delivery.name, channel=claim.channel), ()
            case Ephemeral():
                return await self.tell(delivery, claim), ()
            case _:
                assert_never(delivery)
