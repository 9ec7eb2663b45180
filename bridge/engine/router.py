"""The router: one pass per inbound entry, load → decide → commit.

The router reads the inbound stream in order. For each entry (a LINE event, a Slack event, a
control request, a due timer) it loads everything the decision needs with reads only, lets the
core decide (a pure function of the event, what was loaded, the policy and the entry's time),
and commits the decision in one atomic step: the state changes, the deliveries and the entry's
acknowledgement together. Nothing is written before the decision. A crash at any point leaves
either the whole commit or nothing, and a replay does the pass again against unchanged state.
If what the decision was made from changed before the commit (a version check fails), nothing
is written and the pass runs again from fresh reads.

One router leads at a time (a lease in Redis), so events are decided in the order they
arrived; another worker takes over within one lease period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, assert_never

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bridge import core
from bridge.adapters.line.webhook import parse_event as parse_line_event
from bridge.adapters.redis.codec import ChildLoad, as_text, now_ms
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.store import ChildRequest, Store, ThreadRequest
from bridge.adapters.slack.parse import parse_event as parse_slack_event
from bridge.core.case import CaseAction
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
    timer_fired,
)
from bridge.core.ids import CaseNumber, ThreadTs
from bridge.core.policy import Policy
from bridge.core.rules import controls
from bridge.core.rules.intake import ChildState, on_child_writes
from bridge.engine.commit import Loaded, Plan
from bridge.engine.errors import safe_trace

log = logging.getLogger("bridge.worker")

ROUTER_LEASE_MS = 10_000
ROUTER_BATCH = 100
# A pass whose commit keeps finding changed state (another writer at work) is tried this often,
# then left pending and tried again on the next read.
PASSES_PER_ENTRY = 5
STANDING_EVERY_S = 60
# Due timers are looked for when the earliest is due, and at least this often.
LOOK_FOR_TIMERS_S = 1.0
TIMERS_PER_LOOK = 100


# At most this many entries are loaded and committed together.
BATCH_TOGETHER = 32


def entry_time(entry_id: str) -> float:
    """The time Redis recorded an entry: the same on every replay, so decisions repeat."""
    return int(entry_id.split("-")[0]) / 1000


def parse_entry(fields: dict[Any, Any]) -> InboundEvent:
    """The core event an inbound entry records. Raises for an entry that cannot be read."""
    source = as_text(fields.get(b"source", fields.get("source", b"")))
    body = as_text(fields.get(b"body", fields.get("body", b"{}")))
    if source == "timer":
        return timer_fired(body)
    raw = json.loads(body)
    return parse_line_event(raw) if source == "line" else parse_slack_event(raw)


class Conflicted(RuntimeError):
    """The state kept changing under a pass: the entry stays pending."""


class Router:
    """The router of one worker process."""

    def __init__(self, *, name: str, policy: Policy, channel: str, redis: Redis, store: Store) -> None:
        self.name = name
        self.policy = policy
        self.channel = channel
        self.redis = redis
        self.store = store
        self.stopping = asyncio.Event()
        self._next_fire = 0.0  # when to look for due timers next (wall clock, like their due times)

    # --- leading ---------------------------------------------------------------------

    async def route_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                if await self.store.acquire_router_lease(self.name, ROUTER_LEASE_MS):
                    log.info("router leading name=%s", self.name)
                    await self.lead()
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
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def lead(self) -> None:
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
            while not self.stopping.is_set():
                if time.monotonic() > valid_until - ROUTER_LEASE_MS / 2000:
                    if not await self.store.renew_router_lease(self.name, ROUTER_LEASE_MS):
                        log.warning("router lease lost name=%s", self.name)
                        return
                    valid_until = time.monotonic() + ROUTER_LEASE_MS / 1000
                if time.monotonic() >= standing_due:
                    await self.standing_pass(time.time())
                    standing_due = time.monotonic() + STANDING_EVERY_S
                # Due timers join the stream here, so they are decided in order with events. The
                # router arms every timer itself (in its commits), so it knows when to look next.
                if time.time() >= self._next_fire:
                    fired, next_timer = await self.store.fire_due_timers(limit=TIMERS_PER_LOOK)
                    wait = 0.0 if fired >= TIMERS_PER_LOOK else min(next_timer or LOOK_FOR_TIMERS_S, LOOK_FOR_TIMERS_S)
                    self._next_fire = time.time() + wait
                block_ms = max(1, min(1000, int((self._next_fire - time.time()) * 1000) + 1))
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
                batch = [(as_text(entry_id), fields) for entry_id, fields in entries]
                while batch:
                    if time.monotonic() > valid_until - 0.5 or self.stopping.is_set():
                        cursor = "0"  # the rest of this batch is pending: read it again first
                        break
                    done = await self.route_together(batch)
                    if not done:
                        await self.route_entry(*batch[0])
                        done = 1
                    del batch[:done]
        finally:
            if self.stopping.is_set():
                with contextlib.suppress(Exception):
                    await self.store.release_router_lease(self.name)

    # --- one pass ----------------------------------------------------------------------

    async def route_entry(self, entry_id: str, fields: dict[Any, Any] | None) -> None:
        """Decide one recorded event and commit the decision with the entry's acknowledgement.

        Safe to repeat: after a commit the entry is gone and a repeat finds nothing to do;
        before it, nothing was written and a repeat decides the same from the same state.
        """
        fields = fields or {}  # a pending entry whose content is gone reads as None
        source = "?"
        try:
            source = as_text(fields.get(b"source", fields.get("source", b"")))
            await self.pass_once(entry_id, parse_entry(fields))
        except (RedisError, OSError, Conflicted):
            raise  # the entry stays pending; the router reads it again once Redis answers
        except Exception as exc:
            # A poison event must not stop the router, and must not be lost either: it is set
            # aside for an operator. Only the error's type and frames are logged, never content.
            log.error("routing failed entry=%s source=%s; set aside\n%s", entry_id, source, safe_trace(exc))
            await self.store.set_aside(entry_id, fields)

    async def route_together(self, batch: list[tuple[str, dict[Any, Any] | None]]) -> int:
        """Route the first entries of a batch with one load and one commit, when they concern
        different children and cases: children's messages and counsellors' thread messages,
        loaded in one pipeline, decided in order, committed in one step. Returns how many were
        committed; 0 leaves the first entry to route_entry (anything else, or a conflict)."""
        window: list[tuple[str, ChildMessage | ThreadMessage]] = []
        for entry_id, fields in batch[:BATCH_TOGETHER]:
            try:
                event = parse_entry(fields or {})
            except Exception:
                break  # route_entry sets it aside
            if not isinstance(event, ChildMessage | ThreadMessage) or (
                isinstance(event, ThreadMessage) and not event.thread_ts
            ):
                break
            window.append((entry_id, event))
        if len(window) < 2:
            return 0
        window_s = self.policy.flood_window_seconds
        requests = [
            ChildRequest(event.child_id, entry_time(entry_id), window_s)
            if isinstance(event, ChildMessage)
            else ThreadRequest(ThreadTs(event.thread_ts or ""))
            for entry_id, event in window
        ]
        loads = await self.store.load_many(requests)
        ops = Ops()
        plans: list[tuple[Plan, core.Decision]] = []
        touched: set[object] = set()
        for (entry_id, event), load in zip(window, loads, strict=True):
            now, loaded = entry_time(entry_id), Loaded()
            if isinstance(event, ChildMessage):
                assert isinstance(load, ChildLoad)
                decision = self._child_message_from(event, load, now, loaded)
            else:
                assert not isinstance(load, ChildLoad)
                case = loaded.case(load)
                decision = core.on_counsellor_message(
                    event, case, self.policy, channel=self.channel, delivery_id=entry_id, now=now
                )
            # What this decision was made from must not be what an earlier one in the batch
            # changes: the same case, the same child, or the case sequence.
            marks = {*(("case", n) for n in loaded.cases), *loaded.fields, *loaded.values}
            if marks & touched:
                break
            touched |= marks
            plans.append((self._plan(decision, loaded, now=now, entry_id=entry_id, ops=ops), decision))
        if len(plans) < 2:
            return 0
        if await self.store.commit(ops) is not Committed.DONE:
            return 0  # changed meanwhile, or committed by another router: one at a time then
        for plan, decision in plans:
            self._committed(plan, decision)
        return len(plans)

    async def pass_once(self, entry_id: str, event: InboundEvent) -> Committed:
        """Load, decide, commit; again from fresh reads if the state changed meanwhile."""
        now = entry_time(entry_id)
        for _ in range(PASSES_PER_ENTRY):
            loaded = Loaded()
            decision = await self.decide(entry_id, event, now, loaded)
            result = await self.commit(decision, loaded, now=now, entry_id=entry_id)
            if result is not Committed.CONFLICT:
                return result
            log.info("state changed during a pass entry=%s; deciding again", entry_id)
        raise Conflicted(entry_id)

    async def commit(self, decision: core.Decision, loaded: Loaded, *, now: float, entry_id: str | None) -> Committed:
        plan = self._plan(decision, loaded, now=now, entry_id=entry_id)
        if plan.ops.count == 0:
            return Committed.DONE
        result = await self.store.commit(plan.ops)
        if result is Committed.DONE:
            self._committed(plan, decision)
        return result

    def _plan(
        self, decision: core.Decision, loaded: Loaded, *, now: float, entry_id: str | None, ops: Ops | None = None
    ) -> Plan:
        plan = Plan(
            keys=self.store.keys,
            loaded=loaded,
            child_key=self.store.child_key,
            now=now,
            audit_retention_days=self.policy.audit_retention_days,
            ops=ops,
        )
        marker = entry_id or f"standing-{int(now * 1000)}"
        plan.effects(decision.effects, entry_id=marker)
        plan.deliveries(decision.deliveries, item_prefix=marker, now_ms=now_ms())
        plan.checks()
        if entry_id is not None:
            plan.entry(entry_id)
        return plan

    def _committed(self, plan: Plan, decision: core.Decision) -> None:
        plan.log_notes()
        for effect in decision.effects:
            if isinstance(effect, core.ScheduleTimer):  # armed now: look for it when it is due
                self._next_fire = min(self._next_fire, effect.at)

    async def standing_pass(self, now: float) -> None:
        """What must happen whatever arrives: the next closing reminder, and the retention of
        personal data (LINE user IDs of long-closed cases, old audit records)."""
        closed_long_ago = await self.store.closed_before(core.ids_closed_before(self.policy, now=now))
        retention = core.on_retention(tuple(closed_long_ago), self.policy, now=now)
        decision = core.Decision(effects=(*core.standing_timers(self.policy, now=now), *retention.effects))
        await self.commit(decision, Loaded(), now=now, entry_id=None)

    # --- load and decide ---------------------------------------------------------------

    async def decide(self, entry_id: str, event: InboundEvent, now: float, loaded: Loaded) -> core.Decision:
        """Load what the event's decision needs and let the core decide. Every event type has
        a case: mypy fails on one without."""
        channel, policy, store = self.channel, self.policy, self.store
        match event:
            case ChildMessage():
                return await self._decide_child_message(event, now, loaded)
            case ChildFollowed():
                return core.on_child_followed(event, policy, block=await store.block_of(event.child_id))
            case ChildUnfollowed():
                number = await store.open_case_of(event.child_id)
                case = loaded.case(await store.case_record(number)) if number is not None else None
                return core.on_child_unfollowed(case, policy, now=now)
            case ThreadMessage():
                case = await self._case_of_thread(event.thread_ts, loaded)
                return core.on_counsellor_message(event, case, policy, channel=channel, delivery_id=entry_id, now=now)
            case ThreadEdit():
                case = await self._case_of_thread(event.previous.thread_ts, loaded)
                return core.on_counsellor_edit(event, case, policy, channel=channel)
            case ThreadDelete():
                case = await self._case_of_thread(event.previous.thread_ts, loaded)
                return core.on_counsellor_delete(event, case, policy, channel=channel)
            case TimerFired():
                return await self._decide_timer(event, now, loaded)
            case ControlRequested():
                return await self._decide_control(event, now, loaded)
            case MemberChanged():
                return controls.on_member_changed(event, channel=channel)
            case Ignored():
                log.info("event ignored entry=%s reason=%s", entry_id, event.reason)
                return core.NOTHING
            case _:
                assert_never(event)

    async def _case_of_thread(self, thread_ts: ThreadTs | None, loaded: Loaded) -> core.Case | None:
        return loaded.case(await self.store.case_record_of_thread(thread_ts)) if thread_ts else None

    async def _decide_child_message(self, event: ChildMessage, now: float, loaded: Loaded) -> core.Decision:
        child = await self.store.load_child(event.child_id, now=now, window_s=self.policy.flood_window_seconds)
        return self._child_message_from(event, child, now, loaded)

    def _child_message_from(self, event: ChildMessage, child: ChildLoad, now: float, loaded: Loaded) -> core.Decision:
        keys = self.store.keys
        child_key = self.store.child_key(event.child_id)
        # The decision holds only if the child is still as read: no other case opened, no block.
        loaded.fields[(keys.open_by_child, child_key)] = child.open_number_raw
        loaded.fields[(keys.blocked, child_key)] = child.block_raw
        if child.open_case is None:
            loaded.values[keys.case_seq] = child.seq_raw  # the number a new case takes is still free
        state = ChildState(
            open_case=loaded.case(child.open_case),
            block=child.block,
            blocked_case=loaded.case(child.blocked_case),
            history=child.history,
            closed_notice=child.closed_notice,
            recent=child.recent,
            last_number=int(child.seq_raw or 0),
            open_cases=child.open_cases,
            unanswered=child.unanswered,
        )
        return on_child_writes(event, state, self.policy, now=now)

    async def _decide_control(self, request: ControlRequested, now: float, loaded: Loaded) -> core.Decision:
        """Load what a control request is checked against, and let the core decide."""
        store, keys = self.store, self.store.keys
        if request.thread_ts is not None:
            record = await store.case_record_of_thread(request.thread_ts)
        else:
            number = controls.requested_number(request)
            record = await store.case_record(number) if number is not None else None
        case = loaded.case(record)
        block = current = blocked_from = None
        if record is not None and record.child_key:
            block_raw = await store.block_raw_of_key(record.child_key)
            open_raw = await store.open_number_of_key(record.child_key)
            loaded.fields[(keys.blocked, record.child_key)] = block_raw
            loaded.fields[(keys.open_by_child, record.child_key)] = open_raw
            block = store.block_from(block_raw) if block_raw else None
            if open_raw is not None and int(open_raw) != record.case.number:
                current = loaded.case(await store.case_record(CaseNumber(int(open_raw))))  # the child's open case
            if block is not None and block.case != record.case.number:
                blocked_from = loaded.case(await store.case_record(block.case))  # the case blocked from
        open_cases = await store.open_cases() if controls.requested_action(request) is CaseAction.CASES else []
        decision = controls.on_control(
            request,
            case,
            self.policy,
            roster=await store.roster(),
            block=block,
            open_cases=open_cases,
            now=now,
            current=current,
            blocked_from=blocked_from,
        )
        action = request.action if request.action in controls.ACTIONS else "?"  # never echo arbitrary text
        via = request.via if request.via in ("command", "button", "shortcut") else "?"
        log.info("control decided action=%s via=%s case=%s", action, via, case.number if case else "-")
        return decision

    async def _decide_timer(self, timer: TimerFired, now: float, loaded: Loaded) -> core.Decision:
        """Load what a due timer's decision needs. Every timer kind has a case: mypy fails on
        one without."""
        store, policy = self.store, self.policy
        match timer.kind:
            case TimerKind.BUSY:
                number = timer.case_number()
                case = loaded.case(await store.case_record(number))
                queue = None
                if case is not None and case.is_open:
                    opened, before = await store.queue_counts(number)
                    queue = core.Queue.of(open_cases=opened, unanswered_before=before)
                return core.on_busy_timer(case, policy, now=now, queue=queue)
            case TimerKind.OPENING:
                arrived_at = dict(await store.closed_arrivals())
                cases = loaded.cases_of(await store.case_records(list(arrived_at)))
                arrivals = [(case, arrived_at[case.number]) for case in cases]
                return core.on_opening_timer(arrivals, policy, now=now, opening_at=float(timer.instant_value()))
            case TimerKind.UNANSWERED:
                case = loaded.case(await store.case_record(timer.case_number()))
                return core.on_unanswered_timer(case, policy, now=now)
            case TimerKind.SOFT_WARNING | TimerKind.SOFT_LIMIT | TimerKind.OVERTIME:
                case = loaded.case(await store.case_record(timer.case_number()))
                return core.on_guideline_timer(timer.kind, case, policy, now=now)
            case TimerKind.IDLE_WARNING | TimerKind.IDLE_CLOSE:
                case = loaded.case(await store.case_record(timer.case_number()))
                return core.on_silence_timer(timer.kind, timer.instant_value(), case, policy, now=now)
            case TimerKind.FLOOD_RELEASE:
                number = timer.case_number()
                case = loaded.case(await store.case_record(number))
                return core.on_flood_timer(timer.instant_value(), case, await store.deferred_of(number), policy)
            case TimerKind.CLOSING:
                open_cases = loaded.cases_of(await store.open_case_records())
                return core.on_closing_timer(open_cases, float(timer.instant_value()), policy, now=now)
            case _:
                assert_never(timer.kind)
