"""Loading and deciding, for every kind of entry: what each event's decision is made from
(reads only, noted in a Loaded so the commit can check it is unchanged), and which core function
decides it. Part of the router (router.py); it writes nothing.
"""

from __future__ import annotations

import logging
from typing import assert_never

from bridge import core
from bridge.adapters.redis.codec import CaseRecord, ChildLoad, block_from
from bridge.adapters.redis.store import Store
from bridge.core.case import CaseAction
from bridge.core.channels import pool_of
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    ChildUnfollowed,
    ControlRequested,
    Ignored,
    InboundEvent,
    MemberChanged,
    PurgeRequested,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
    TimerFired,
    TimerKind,
)
from bridge.core.ids import CaseNumber, ThreadTs
from bridge.core.policy import Policy
from bridge.core.rules import controls
from bridge.core.rules.intake import ChildState, on_child_writes
from bridge.engine.commit import Loaded
from bridge.engine.erasure import load_child_of

log = logging.getLogger("bridge.worker")


class Decider:
    """Load, then let the core decide (a part of Router)."""

    policy: Policy
    channel: str  # SLACK_CHANNEL_ID; the pool of case channels, if any, is the policy's
    store: Store

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
                record = await self._record_of_thread(event.thread_ts, event.channel)
                return self._counsellor_message_from(event, record, entry_id, now, loaded)
            case ThreadEdit():
                case = loaded.case(await self._record_of_thread(event.previous.thread_ts, event.channel))
                return core.on_counsellor_edit(event, case, policy, channel=channel)
            case ThreadDelete():
                case = loaded.case(await self._record_of_thread(event.previous.thread_ts, event.channel))
                return core.on_counsellor_delete(event, case, policy, channel=channel)
            case TimerFired():
                return await self._decide_timer(event, now, loaded)
            case ControlRequested():
                return await self._decide_control(event, now, loaded)
            case PurgeRequested():
                return core.on_purge(event, await load_child_of(store, event, loaded), policy)
            case MemberChanged():
                return controls.on_member_changed(event, channel=channel, pool=pool_of(policy))
            case Ignored():
                log.info("event ignored entry=%s reason=%s", entry_id, event.reason)
                return core.NOTHING
            case _:
                assert_never(event)

    def _other_channels(self) -> tuple[str, ...]:
        """The pool's channels besides SLACK_CHANNEL_ID, whose members are in the roster too."""
        return tuple(c for c in pool_of(self.policy) if c != self.channel)

    async def _record_of_thread(self, thread_ts: ThreadTs | None, channel: str | None) -> CaseRecord | None:
        """The case of a thread in this channel: by channel and ts in a pool of case channels
        (thread timestamps are unique only within a channel); none for a channel outside it."""
        if not thread_ts:
            return None
        return await self.store.case_record_of_thread(thread_ts, channel, pool_of(self.policy))

    async def _decide_child_message(self, event: ChildMessage, now: float, loaded: Loaded) -> core.Decision:
        child = await self.store.load_child(event.child_id, now=now, window_s=self.policy.flood_window_seconds)
        return self._child_message_from(event, child, now, loaded)

    def _counsellor_message_from(
        self, event: ThreadMessage, record: CaseRecord | None, entry_id: str, now: float, loaded: Loaded
    ) -> core.Decision:
        """Decide a message in a case thread from the case loaded by its thread."""
        case = loaded.case(record)
        return core.on_counsellor_message(event, case, self.policy, channel=self.channel, delivery_id=entry_id, now=now)

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
            record = await self._record_of_thread(request.thread_ts, request.channel)
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
            block = block_from(block_raw) if block_raw else None
            if open_raw is not None and int(open_raw) != record.case.number:
                current = loaded.case(await store.case_record(CaseNumber(int(open_raw))))  # the child's open case
            if block is not None and block.case != record.case.number:
                blocked_from = loaded.case(await store.case_record(block.case))  # the case blocked from
        open_cases = await store.open_cases() if controls.requested_action(request) is CaseAction.CASES else []
        decision = controls.on_control(
            request,
            case,
            self.policy,
            roster=await store.roster(others=self._other_channels()),
            block=block,
            open_cases=open_cases,
            now=now,
            current=current,
            blocked_from=blocked_from,
        )
        action = request.action if request.action in controls.ACTIONS else "?"  # never echo arbitrary text
        log.info("control decided action=%s via=%s case=%s", action, request.via.value, case.number if case else "-")
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
            case TimerKind.UNANSWERED_CLOSE:
                case = loaded.case(await store.case_record(timer.case_number()))
                return core.on_unanswered_close_timer(case, policy, now=now)
            case TimerKind.FLOOD_RELEASE:
                number = timer.case_number()
                case = loaded.case(await store.case_record(number))
                return core.on_flood_timer(timer.instant_value(), case, await store.deferred_of(number), policy)
            case TimerKind.CLOSING:
                open_cases = loaded.cases_of(await store.open_case_records())
                return core.on_closing_timer(open_cases, float(timer.instant_value()), policy, now=now)
            case _:
                assert_never(timer.kind)
