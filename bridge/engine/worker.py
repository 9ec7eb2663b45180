"""The worker: routes inbound events through the core, then works the delivery lanes.

Two jobs run in every worker process:

- the router reads the inbound stream in order, asks the core what each event means and
  enqueues the deliveries. One router leads at a time (a lease in Redis), so events are
  decided in the order they arrived; another worker takes over within one lease period.
- deliverers claim due lanes (one delivery at a time per lane, so order holds per case
  and per child) and make the API calls, retrying with backoff. Any worker may deliver.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import random
import socket
import time
import traceback
import uuid
from datetime import datetime
from typing import Any, assert_never

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bridge.adapters.line.client import LineClient
from bridge.adapters.line.webhook import parse_event as parse_line_event
from bridge.adapters.redis.store import Claim, Store, as_text
from bridge.adapters.slack.client import SlackClient
from bridge.adapters.slack.names import CASE_EVENT_TYPE, DELIVERY_EVENT_TYPE
from bridge.adapters.slack.parse import parse_event as parse_slack_event
from bridge.adapters.slack.views import root_blocks
from bridge.config.settings import Settings
from bridge.core import case as core
from bridge.core import controls
from bridge.core.deliveries import (
    ChannelPost,
    Delivery,
    Ephemeral,
    LinePush,
    LineReply,
    Reaction,
    RootUpdate,
    ThreadPost,
    from_payload,
    to_payload,
)
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    ChildUnfollowed,
    ControlRequested,
    Ignored,
    InboundEvent,
    MemberChanged,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
    TimerFired,
    TimerKind,
)
from bridge.core.policy import Policy
from bridge.core.retry import DELIVERED, Action, Outcome, RetryRules, next_step, use_reply_token

log = logging.getLogger("bridge.worker")

ROUTER_LEASE_MS = 10_000
ROUTER_BATCH = 100


def lane_for(delivery: Delivery, store: Store) -> str:
    """Towards Slack, one lane per case (and one for the channel itself); towards LINE, one
    lane per child (across cases)."""
    if isinstance(delivery, LinePush | LineReply):
        return "line:" + store.child_key(delivery.to)
    if isinstance(delivery, ChannelPost):
        return f"slack:{delivery.target}"
    if isinstance(delivery, Ephemeral) and delivery.case is None:
        return "slack:commands"
    return f"slack:{delivery.case}"


class Worker:
    """One worker process's jobs, sharing one Redis client and two API clients."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: Policy,
        redis: Redis,
        store: Store,
        line: LineClient,
        slack: SlackClient,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.redis = redis
        self.store = store
        self.line = line
        self.slack = slack
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Idle deliverers wait here; a wake-up rouses one, and a deliverer that found work
        # rouses the next, so the number awake follows the work instead of the pool size.
        self._idle: collections.deque[asyncio.Event] = collections.deque()
        self._stopping = asyncio.Event()
        self.lease_ms = int(settings.BRIDGE_LEASE_SECONDS * 1000)
        self.retry_rules = RetryRules(
            give_up_after_s=settings.BRIDGE_RETRY_GIVE_UP_SECONDS,
            max_backoff_s=settings.BRIDGE_RETRY_MAX_BACKOFF_SECONDS,
            unanswered_wait_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
        )

    @classmethod
    def build(cls, settings: Settings, policy: Policy, redis: Redis) -> Worker:
        """A worker with its API clients made from settings. Call inside the event loop."""
        return cls(
            settings=settings,
            policy=policy,
            redis=redis,
            store=Store(redis),
            line=LineClient(
                access_token=settings.LINE_CHANNEL_ACCESS_TOKEN,
                api_base_url=settings.LINE_API_BASE_URL,
                data_api_base_url=settings.LINE_DATA_API_BASE_URL,
                timeout_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
            ),
            slack=SlackClient(
                token=settings.SLACK_BOT_TOKEN,
                base_url=settings.SLACK_API_BASE_URL,
                channel=settings.SLACK_CHANNEL_ID,
                timeout_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
            ),
        )

    async def close(self) -> None:
        """Close the API clients (not the Redis client, which the caller owns)."""
        await self.line.close()
        await self.slack.close()

    def stop(self) -> None:
        self._stopping.set()
        while self._idle:
            self._idle.popleft().set()

    def _wake_one(self) -> None:
        if self._idle:
            self._idle.popleft().set()

    async def run(self) -> None:
        """Run the router and the deliverers until stop() is called.

        On stop, deliveries in flight get one HTTP timeout to finish, so a reply that was
        sent is also settled (and not sent again by the next worker).
        """
        await self.store.prepare()
        await self.store.ensure_router_group()
        fetched = await self.refresh_roster()  # before routing, so controls are checked from the start
        router = asyncio.create_task(self._route_forever(), name="router")
        waker = asyncio.create_task(self._listen_for_wakeups(), name="wake")
        roster = asyncio.create_task(self._keep_roster(fetched), name="roster")
        deliverers = [
            asyncio.create_task(self._deliver_forever(i), name=f"deliverer-{i}")
            for i in range(self.settings.BRIDGE_WORKER_CONCURRENCY)
        ]
        log.info("worker started name=%s deliverers=%d", self.name, self.settings.BRIDGE_WORKER_CONCURRENCY)
        await self._stopping.wait()
        _, unfinished = await asyncio.wait([router, *deliverers], timeout=self.settings.BRIDGE_HTTP_TIMEOUT_SECONDS + 2)
        for task in [*unfinished, waker, roster]:
            task.cancel()
        await asyncio.gather(router, waker, roster, *deliverers, return_exceptions=True)
        log.info("worker stopped name=%s", self.name)

    # --- the router ----------------------------------------------------------------

    async def _route_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self.store.acquire_router_lease(self.name, ROUTER_LEASE_MS):
                    log.info("router leading name=%s", self.name)
                    await self._lead()
                else:
                    await self._pause(ROUTER_LEASE_MS / 4000)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("router lost Redis (%s); retrying", type(exc).__name__)
                await self._pause(1)
            except Exception as exc:
                log.error("router error; retrying\n%s", safe_trace(exc))
                await self._pause(1)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _lead(self) -> None:
        """Process the stream in order while holding the lease; stop before it could lapse.

        The router first works through entries already delivered to it (its own pending
        list, which after a take-over holds the previous leader's unfinished entries), and
        goes back to them whenever it stopped a batch early, so order holds.
        """
        claim_from = "0-0"
        while True:  # take over all of an earlier leader's pending entries
            result: Any = await self.redis.xautoclaim(
                self.store.keys.inbound, "router", self.name, 0, claim_from, count=1000
            )
            claim_from = as_text(result[0])
            if claim_from == "0-0":
                break
        valid_until = time.monotonic() + ROUTER_LEASE_MS / 1000
        standing_due = 0.0
        cursor = "0"
        try:
            while not self._stopping.is_set():
                if time.monotonic() > valid_until - ROUTER_LEASE_MS / 2000:
                    if not await self.store.renew_router_lease(self.name, ROUTER_LEASE_MS):
                        log.warning("router lease lost name=%s", self.name)
                        return
                    valid_until = time.monotonic() + ROUTER_LEASE_MS / 1000
                if time.monotonic() >= standing_due:
                    for effect in core.standing_timers(self.policy, now=time.time()):
                        await self._apply_effect(effect, time.time())
                    await self.store.trim_audit(retention_days=self.policy.audit_retention_days)
                    forgotten = await self.store.erase_closed_children_ids(
                        closed_before=time.time() - self.policy.closed_case_days * 86400
                    )
                    if forgotten:
                        log.info("LINE user IDs of closed cases erased count=%d", forgotten)
                    standing_due = time.monotonic() + 60
                # Due timers join the stream here, so they are decided in order with events.
                _, next_timer = await self.store.fire_due_timers()
                block_ms = 1000 if next_timer is None else max(1, min(1000, int(next_timer * 1000) + 1))
                response: Any = await self.redis.xreadgroup(
                    "router",
                    self.name,
                    {self.store.keys.inbound: cursor},
                    count=ROUTER_BATCH,
                    block=None if cursor == "0" else block_ms,
                )
                entries = response[0][1] if response else []
                if cursor == "0" and not entries:
                    cursor = ">"  # our pending entries are done; now new ones
                    continue
                for entry_id, fields in entries:
                    if time.monotonic() > valid_until - 0.5 or self._stopping.is_set():
                        cursor = "0"  # the rest of this batch is pending: read it again first
                        break
                    await self.route_entry(as_text(entry_id), fields)
        finally:
            if self._stopping.is_set():
                with contextlib.suppress(Exception):
                    await self.store.release_router_lease(self.name)

    async def route_entry(self, entry_id: str, fields: dict[Any, Any] | None) -> None:
        """Decide one recorded event and apply the decision; then forget the event.

        Safe to repeat: the first run enqueues the deliveries and keeps the state changes in
        one step; a replay after a crash applies what the first run kept (the changes are
        idempotent), never a decision made again against half-changed state.
        """
        fields = fields or {}  # a pending entry whose content is gone reads as None
        source = "?"
        try:
            source = as_text(fields.get(b"source", fields.get("source", b"")))
            body = as_text(fields.get(b"body", fields.get("body", b"{}")))
            event: InboundEvent
            if source == "timer":
                kind, _, arg = body.partition("|")
                known = kind in TimerKind.__members__.values()
                event = TimerFired(kind=TimerKind(kind), arg=arg) if known else Ignored("unknown timer kind")
            else:
                raw = json.loads(body)
                event = parse_line_event(raw) if source == "line" else parse_slack_event(raw)
            await self._apply(entry_id, event)
        except (RedisError, OSError):
            raise  # the entry stays pending; the router reads it again once Redis answers
        except Exception as exc:
            # A poison event must not stop the router, and must not be lost either: it is set
            # aside for an operator. Only the error's type and frames are logged, never content.
            log.error("routing failed entry=%s source=%s; set aside\n%s", entry_id, source, safe_trace(exc))
            await self.store.set_aside(entry_id, fields)
            return
        await self.store.drop_routed_entry(entry_id)

    async def _apply(self, entry_id: str, event: InboundEvent) -> None:
        # The time Redis recorded the event: the same on every replay, so decisions repeat.
        now = int(entry_id.split("-")[0]) / 1000
        decision = await self._decide(entry_id, event, now)
        items = [(lane_for(d, self.store), f"{entry_id}.{i}", to_payload(d)) for i, d in enumerate(decision.deliveries)]
        effects = decision.effects
        kept = await self.store.record_decision(entry_id, items, [core.effect_to_payload(e) for e in effects])
        if kept is not None:  # a replay: what the first run decided and did not finish applying
            effects = tuple(core.effect_from_payload(payload) for payload in kept)
        for index, effect in enumerate(effects):
            await self._apply_effect(effect, now, record_id=f"{entry_id}:{index}")

    async def _decide(self, entry_id: str, event: InboundEvent, now: float) -> core.Decision:
        """Load what the event's decision needs and let the core decide. Every event type has
        a case: mypy fails on one without."""
        channel = self.settings.SLACK_CHANNEL_ID
        policy = self.policy
        match event:
            case ChildMessage():
                return await self._decide_child_message(entry_id, event, now)
            case ChildFollowed():
                if await self.store.block_of(event.child_id) is not None:
                    return core.NOTHING  # a blocked child gets no replies, the welcome included
                return core.on_child_followed(event, policy)
            case ChildUnfollowed():
                number_or_none = await self.store.open_case_of(event.child_id)
                case_or_none = await self.store.get_case(number_or_none) if number_or_none else None
                return core.on_child_unfollowed(case_or_none, policy, now=now)
            case ThreadMessage():
                case_or_none = await self._case_of_thread(event.thread_ts)
                return core.on_counsellor_message(
                    event, case_or_none, policy, channel=channel, delivery_id=entry_id, now=now
                )
            case ThreadEdit():
                case_or_none = await self._case_of_thread(event.previous.thread_ts)
                return core.on_counsellor_edit(event, case_or_none, policy, channel=channel)
            case ThreadDelete():
                case_or_none = await self._case_of_thread(event.previous.thread_ts)
                return core.on_counsellor_delete(event, case_or_none, policy, channel=channel)
            case TimerFired():
                return await self._decide_timer(event, now)
            case ControlRequested():
                return await self._decide_control(event, now)
            case MemberChanged():
                return controls.on_member_changed(event, channel=channel)
            case Ignored():
                log.info("event ignored entry=%s reason=%s", entry_id, event.reason)
                return core.NOTHING
            case _:
                assert_never(event)

    async def _decide_child_message(self, entry_id: str, event: ChildMessage, now: float) -> core.Decision:
        channel = self.settings.SLACK_CHANNEL_ID
        policy = self.policy
        closed = not policy.schedule.is_open(datetime.fromtimestamp(now, policy.timezone))
        number, _, block = await self.store.open_case_unless_blocked(
            event.child_id, now, arrived_closed=closed, entry_id=entry_id
        )
        if block is not None:
            log.info("message from a blocked child counted case=%d", block.case)
            blocked_case = await self.store.get_case(block.case)
            return core.on_blocked_message(event, blocked_case, policy, channel=channel)
        case = await self.store.get_case(number)
        assert case is not None
        created = case.opened_by == entry_id  # true again when this entry is replayed
        if created:
            log.info("case opened case=%d while=%s", number, "closed" if closed else "open")
        sticker = event.media is not None and event.media.type == "sticker"
        recent = await self.store.note_recent(
            number, entry_id, sticker=sticker, at=now, window_s=policy.flood_window_seconds
        )
        return core.on_child_message(
            event,
            case,
            policy,
            now=now,
            created=created,
            queue=await self.store.queue_of(number) if created and not closed else None,
            closed_notice=await self.store.closed_notice_of(event.child_id) if closed else None,
            recent=recent,
            channel=channel,
        )

    async def _decide_control(self, request: ControlRequested, now: float) -> core.Decision:
        """Load what a control request is checked against, and let the core decide."""
        if request.thread_ts is not None:
            case = await self._case_of_thread(request.thread_ts)
        else:
            number = controls.requested_number(request)
            case = await self.store.get_case(number) if number is not None else None
        block = await self.store.block_of_case(case.number) if case is not None else None
        open_cases = await self.store.open_cases() if request.action == controls.CASES else []
        current = None  # the child's open case, when a block names an earlier one
        if request.action == core.BLOCK and case is not None and not case.is_open:
            open_number = await self.store.open_case_of_case(case.number)
            current = await self.store.get_case(open_number) if open_number is not None else None
        blocked_from = None  # the case a block was made from, when an unblock names another
        if request.action == core.UNBLOCK and case is not None and block is not None and block.case != case.number:
            blocked_from = await self.store.get_case(block.case)
        decision = controls.on_control(
            request,
            case,
            self.policy,
            roster=await self.store.roster(),
            block=block,
            open_cases=open_cases,
            now=now,
            channel=self.settings.SLACK_CHANNEL_ID,
            current=current,
            blocked_from=blocked_from,
        )
        action = request.action if request.action in controls.ACTIONS else "?"  # never echo arbitrary text
        via = request.via if request.via in ("command", "button", "shortcut") else "?"
        log.info("control decided action=%s via=%s case=%s", action, via, case.number if case else "-")
        return decision

    async def _decide_timer(self, timer: TimerFired, now: float) -> core.Decision:
        """Load what a due timer's decision needs. Every timer kind has a case: mypy fails on
        one without."""
        channel = self.settings.SLACK_CHANNEL_ID
        match timer.kind:
            case TimerKind.BUSY:
                number = core.busy_timer_case(timer.arg)
                case = await self.store.get_case(number)
                queue = await self.store.queue_of(number) if case and case.is_open else None
                return core.on_busy_timer(case, self.policy, now=now, queue=queue)
            case TimerKind.OPENING:
                arrived_at = dict(await self.store.closed_arrivals())
                cases = await self.store.get_cases(list(arrived_at))
                arrivals = [(case, arrived_at[case.number]) for case in cases]
                return core.on_opening_timer(arrivals, self.policy, now=now, opening_at=float(timer.arg))
            case TimerKind.UNANSWERED:
                case = await self.store.get_case(int(timer.arg))
                return core.on_unanswered_timer(case, self.policy, now=now, channel=channel)
            case TimerKind.SOFT_WARNING | TimerKind.SOFT_LIMIT | TimerKind.OVERTIME:
                case = await self.store.get_case(int(timer.arg))
                return core.on_guideline_timer(timer.kind, case, self.policy, now=now, channel=channel)
            case TimerKind.IDLE_WARNING | TimerKind.IDLE_CLOSE:
                case = await self.store.get_case(int(timer.arg.split(":")[0]))
                return core.on_silence_timer(timer.kind, timer.arg, case, self.policy, now=now)
            case TimerKind.FLOOD_RELEASE:
                number = int(timer.arg.split(":")[0])
                case = await self.store.get_case(number)
                return core.on_flood_timer(timer.arg, case, await self.store.held_of(number), self.policy)
            case TimerKind.CLOSING:
                return core.on_closing_timer(await self.store.open_cases(), float(timer.arg), self.policy, now=now)
            case _:
                assert_never(timer.kind)

    async def _apply_effect(self, effect: core.Effect, now: float, *, record_id: str = "") -> None:
        """Apply one state change. Every effect type has a case: mypy fails on one without."""
        match effect:
            case core.CloseCase():
                if await self.store.close_case(effect.number, effect.reason.value, now, by=effect.by):
                    log.info("case closed case=%d reason=%s", effect.number, effect.reason.value)
            case core.ScheduleTimer():
                await self.store.schedule_timer(effect.kind, effect.arg, effect.at)
            case core.MarkClosedNotice():
                await self.store.mark_closed_notice(effect.child_id, effect.period, effect.until)
            case core.MarkBusyNotified():
                await self.store.mark_busy_notified(effect.number)
            case core.NoteClosedArrival():
                await self.store.note_closed_arrival(effect.number, effect.at)
            case core.ClearClosedArrivals():
                await self.store.clear_closed_arrivals(effect.numbers)
            case core.AssignCounsellor():
                await self.store.assign_counsellor(effect.number, effect.user, effect.at)
            case core.NoteCounsellorReply():
                await self.store.note_counsellor_reply(effect.number, effect.at)
            case core.NoteChildMessage():
                await self.store.note_child_message(effect.number, effect.at)
            case core.HoldCase():
                await self.store.set_hold(effect.number, True)
                log.info("case on hold case=%d", effect.number)
            case core.MarkArrivedClosed():
                await self.store.mark_arrived_closed(effect.number)
            case core.ChangeMember():
                await self.store.change_member(effect.user, joined=effect.joined)
                log.info("roster changed joined=%s", effect.joined)
            case core.MarkUrgent():
                await self.store.mark_urgent(effect.number)
                log.info("case marked urgent case=%d", effect.number)
            case core.BlockChild():
                await self.store.block_child(effect.number, by=effect.by, reason=effect.reason, at=effect.at)
                log.info("child blocked case=%d", effect.number)
            case core.UnblockChild():
                await self.store.unblock_child(effect.number)
                log.info("child unblocked case=%d", effect.number)
            case core.MarkBlockedRisk():
                await self.store.mark_blocked_risk(effect.number)
            case core.CountBlockedMessage():
                await self.store.count_blocked_message(effect.number, marker=record_id)
            case core.StartFlood():
                await self.store.start_flood(effect.number, effect.until)
                log.info("flood hold started case=%d", effect.number)
            case core.HoldBack():
                await self.store.hold_back(effect.number, effect.text, marker=record_id)
            case core.ReleaseFlood():
                await self.store.release_flood(effect.number)
                log.info("flood hold lifted case=%d", effect.number)
            case core.Audit():
                record = {
                    "case": "" if effect.case is None else str(effect.case),
                    "actor": effect.actor,
                    "action": effect.action,
                    "reason": effect.reason,
                    "via": effect.via,
                }
                await self.store.add_audit(record_id, record, at=now, retention_days=self.policy.audit_retention_days)
            case _:
                assert_never(effect)

    async def _case_of_thread(self, thread_ts: str | None) -> core.Case | None:
        if not thread_ts:
            return None
        number = await self.store.case_by_thread(thread_ts)
        return await self.store.get_case(number) if number is not None else None

    # --- the deliverers ------------------------------------------------------------

    async def _listen_for_wakeups(self) -> None:
        """Wake idle deliverers as soon as anything is enqueued anywhere."""
        while not self._stopping.is_set():
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.store.keys.wake_channel)
                    while not self._stopping.is_set():
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self._wake_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("wake-up subscription lost; resubscribing")
                await asyncio.sleep(1)

    async def _deliver_forever(self, index: int) -> None:
        token = f"{self.name}:{index}"
        while not self._stopping.is_set():
            # Listed as idle before looking for work, so a wake-up that comes meanwhile counts.
            wake = asyncio.Event()
            self._idle.append(wake)
            try:
                claims = await self.store.claim(token=token, lease_ms=self.lease_ms, max_lanes=1)
                if claims:
                    self._forget(wake)
                    self._wake_one()  # there may be more due lanes: let another deliverer look
                    await self.deliver(claims[0], token)
                    continue
                wait = await self.store.next_due_in()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=min(wait if wait is not None else 1.0, 1.0))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("deliverer lost Redis (%s); pausing", type(exc).__name__)
                await asyncio.sleep(1)
            except Exception as exc:
                log.error("deliverer error; pausing\n%s", safe_trace(exc))
                await asyncio.sleep(1)
            finally:
                self._forget(wake)

    def _forget(self, wake: asyncio.Event) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(wake)

    async def deliver(self, claim: Claim, token: str) -> None:
        """Make one delivery and settle it: complete, retry later, or fail with a report."""
        try:
            delivery = from_payload(claim.payload)
        except (TypeError, ValueError) as exc:
            log.error("undeliverable item=%s lane=%s; set aside\n%s", claim.item_id, claim.lane, safe_trace(exc))
            await self.store.set_aside_delivery(claim, token=token)
            return
        attempt_over = asyncio.Event()
        heartbeat = asyncio.create_task(self._keep_lease(claim, token, attempt_over))
        try:
            outcome, followups = await self._attempt(delivery, claim)
        except (RedisError, OSError) as exc:
            outcome, followups = Outcome("retry", f"redis: {type(exc).__name__}", ambiguous=True), ()
        except Exception as exc:
            # A bug must not leave the lane leased forever: back off like any failure.
            log.error("delivery attempt raised item=%s\n%s", claim.item_id, safe_trace(exc))
            outcome, followups = Outcome("retry", f"bridge error: {type(exc).__name__}"), ()
        finally:
            attempt_over.set()
            await heartbeat  # finished before the lane is settled, so it cannot renew afterwards
        step = next_step(
            delivery,
            outcome,
            attempts=claim.attempts,
            age_s=(time.time() * 1000 - claim.enqueued_ms) / 1000,
            rules=self.retry_rules,
            jitter=random.uniform(0.8, 1.2),
        )
        fields = f"item={claim.item_id} kind={delivery.kind} attempts={claim.attempts}"
        if step.action is Action.COMPLETE:
            await self.store.complete(claim, token=token, followups=self._lane_items(claim, followups))
            log.info("delivered %s", fields)
        elif step.action is Action.PUSH_INSTEAD:
            assert isinstance(delivery, LineReply)
            replacement = to_payload(dataclasses.replace(delivery, reply_token=None))
            await self.store.retry_later(claim, token=token, delay_s=0, replacement=replacement)
            log.info("reply token refused; pushing instead %s", fields)
        elif step.action is Action.RETRY:
            if step.pause_platform_s is not None:
                await self.store.pause_platform(claim.lane.split(":")[0], step.pause_platform_s)
            await self.store.retry_later(claim, token=token, delay_s=step.delay_s)
            log.warning("delivery retry %s in=%.1fs reason=%s", fields, step.delay_s, outcome.reason)
        elif step.action is Action.SET_ASIDE:
            await self.store.set_aside_delivery(claim, token=token)
            log.error("child message set aside for an operator %s reason=%s", fields, outcome.reason)
        else:
            failed = self._after_failure(delivery, outcome.reason)
            await self.store.complete(claim, token=token, followups=self._lane_items(claim, failed))
            log.error("delivery failed %s reason=%s", fields, outcome.reason)

    async def _keep_lease(self, claim: Claim, token: str, attempt_over: asyncio.Event) -> None:
        """Renew the lane's lease while an attempt runs, so no other worker takes it over."""
        while not attempt_over.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attempt_over.wait(), timeout=self.lease_ms / 3000)
            if attempt_over.is_set():
                return
            try:
                renewed = await self.store.renew_lane_lease(claim.lane, token=token, lease_ms=self.lease_ms)
            except (RedisError, OSError) as exc:
                log.warning("lane lease renewal failed item=%s error=%s", claim.item_id, type(exc).__name__)
                continue
            if not renewed:
                log.warning("lane lease lost item=%s", claim.item_id)
                return

    def _after_failure(self, delivery: Delivery, reason: str) -> tuple[Delivery, ...]:
        if isinstance(delivery, LinePush | LineReply):
            return core.after_line_failed(delivery, reason, self.policy)
        return ()

    def _lane_items(self, claim: Claim, followups: tuple[Delivery, ...]) -> list[tuple[str, str, dict[str, Any]]]:
        return [(lane_for(d, self.store), f"{claim.item_id}.f{i}", to_payload(d)) for i, d in enumerate(followups)]

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
            case ThreadPost():
                return await self._post_in_thread(delivery, claim), ()
            case RootUpdate():
                case = await self.store.get_case(delivery.case)
                if case is None or case.thread_ts is None:
                    return DELIVERED, ()  # no root yet: when it is posted, it shows the state then
                blocks = self._blocks(delivery)
                return await self.slack.update(ts=case.thread_ts, text=delivery.text, blocks=blocks), ()
            case ChannelPost():
                return await self._post_to_channel(delivery, claim), ()
            case Reaction():
                return await self.slack.react(ts=delivery.message_ts, name=delivery.name), ()
            case Ephemeral():
                return await self._tell(delivery, claim), ()
            case _:
                assert_never(delivery)

    async def _tell(self, delivery: Ephemeral, claim: Claim) -> Outcome:
        case = await self.store.get_case(delivery.case) if delivery.case is not None else None
        thread_ts = case.thread_ts if case else None
        outcome = await self.slack.post_ephemeral(user=delivery.user, thread_ts=thread_ts, text=delivery.text)
        if outcome.status == "failed" and "user_not_in_channel" in outcome.reason:
            # Someone outside the case channel (refused, or removed since): tell them directly.
            outcome = await self._post_once(claim, text=delivery.text, thread_ts=None, case=None, channel=delivery.user)
        if outcome.status == "failed":
            return DELIVERED  # there is no one to tell (the person's account is gone)
        return outcome

    async def _post_in_thread(self, post: ThreadPost, claim: Claim) -> Outcome:
        case = await self.store.get_case(post.case)
        if case is None:
            return Outcome("failed", "unknown case")
        thread_ts = case.thread_ts
        if thread_ts is None:
            outcome, thread_ts = await self._open_thread(case, claim.attempts > 1)
            if thread_ts is None:
                return outcome
        return await self._post_once(claim, text=post.text, thread_ts=thread_ts, case=case.number)

    async def _post_to_channel(self, post: ChannelPost, claim: Claim) -> Outcome:
        channel = (
            self.settings.SLACK_SUPERVISOR_CHANNEL_ID
            if post.target == "supervisors"
            else self.settings.SLACK_CHANNEL_ID
        )
        return await self._post_once(claim, text=post.text, thread_ts=None, case=None, channel=channel)

    async def _post_once(
        self, claim: Claim, *, text: str, thread_ts: str | None, case: int | None, channel: str | None = None
    ) -> Outcome:
        """Post for this delivery, unless an earlier attempt already did (found by metadata)."""
        if claim.attempts > 1:
            # An earlier attempt may have landed before the worker lost track of it.
            looked, found = await self.slack.find_posted(
                thread_ts=thread_ts,
                oldest=claim.enqueued_ms / 1000 - 60,
                event_type=DELIVERY_EVENT_TYPE,
                key="delivery",
                value=claim.item_id,
                channel=channel,
            )
            if not looked:
                return Outcome("retry", "could not check for an earlier post")
            if found:
                return DELIVERED
        payload: dict[str, Any] = {"delivery": claim.item_id}
        if case is not None:
            payload["case"] = case
        outcome, _ = await self.slack.post(
            text=text, thread_ts=thread_ts, event_type=DELIVERY_EVENT_TYPE, payload=payload, channel=channel
        )
        return outcome

    def _blocks(self, root: RootUpdate) -> list[dict[str, Any]]:
        """The root message's blocks: its text, and the buttons of the actions it offers."""
        buttons = [(name, self.policy.render(f"{name}_button")) for name in root.buttons]
        confirm = self.policy.render("close_confirm", case=root.case)
        return root_blocks(root.text, case=root.case, buttons=buttons, close_confirm=confirm)

    # --- the roster ----------------------------------------------------------------

    async def refresh_roster(self) -> bool:
        """Fetch the case channel's members and the supervisors' group from Slack into Redis.
        On failure the last roster stays in use (and is logged); returns whether it worked."""
        group = self.policy.supervisor_group
        supervisors: list[str] | None = []
        try:
            members = await self.slack.channel_members()
            if group:
                try:
                    supervisors = await self.slack.usergroup_members(group)
                except Exception as exc:  # a wrong group must not stop every control: keep the last list
                    log.warning("supervisor group lookup failed error=%s; keeping the last list", type(exc).__name__)
                    supervisors = None
            await self.store.save_roster(members, supervisors, at=time.time())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("roster refresh failed error=%s", type(exc).__name__)
            return False
        log.info("roster refreshed members=%d group_supervisors=%s", len(members), len(supervisors or ()))
        return supervisors is not None

    async def _keep_roster(self, fetched: bool) -> None:
        while not self._stopping.is_set():
            await self._pause(self.settings.BRIDGE_ROSTER_REFRESH_SECONDS if fetched else 10)
            if not self._stopping.is_set():
                fetched = await self.refresh_roster()

    async def _open_thread(self, case: core.Case, retrying: bool) -> tuple[Outcome, str | None]:
        ts = None
        if retrying:
            looked, ts = await self.slack.find_posted(
                thread_ts=None,
                oldest=case.opened_at - 60,
                event_type=CASE_EVENT_TYPE,
                key="case",
                value=case.number,
            )
            if not looked:
                return Outcome("retry", "could not check for an earlier root"), None
        outcome = DELIVERED
        if ts is None:
            root = core.root_update(case, self.policy)
            outcome, ts = await self.slack.post(
                text=root.text,
                thread_ts=None,
                event_type=CASE_EVENT_TYPE,
                payload={"case": case.number},
                blocks=self._blocks(root),
            )
        if ts is not None:
            await self.store.set_thread(case.number, ts)
            refreshed = await self.store.get_case(case.number)
            ts = refreshed.thread_ts if refreshed else ts
            log.info("case thread opened case=%d", case.number)
        return outcome, ts


def safe_trace(exc: BaseException) -> str:
    """The exception's type and stack frames, without its message (which may quote content)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"{frames}{type(exc).__module__}.{type(exc).__qualname__}"
