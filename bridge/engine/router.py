"""The router: one pass per inbound entry, load → decide → commit.

The router reads the inbound stream in order. For each entry (a LINE event, a Slack event, a
control request, a due timer) it loads everything the decision needs with reads only, lets the
core decide (a pure function of the event, what was loaded, the policy and the entry's time),
and commits the decision in one atomic step: the state changes, the deliveries and the entry's
acknowledgement together. Nothing is written before the decision. A crash at any point leaves
either the whole commit or nothing, and a replay does the pass again against unchanged state.
If what the decision was made from changed before the commit (a version check fails), nothing
is written and the pass runs again from fresh reads.

One router leads each partition of the stream at a time (a lease in Redis per partition,
adapters/redis/partitions.py), so a partition's events are decided in the order they arrived:
every event of a child, and of the child's case, is in one partition. Workers share the
partitions (engine/partitions.py); when a leader dies, another worker takes its partitions over
within seconds (its heartbeat stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any, Protocol

from redis.exceptions import RedisError

from bridge import core
from bridge.adapters.redis.codec import ChildLoad, Claim, as_text, now_ms
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.store import ChildRequest, Store, ThreadRequest
from bridge.core.channels import pool_of
from bridge.core.events import (
    ChildMessage,
    InboundEvent,
    ThreadMessage,
)
from bridge.core.ids import ThreadTs
from bridge.core.policy import Policy
from bridge.engine.commit import Loaded, Plan
from bridge.engine.decide import Decider
from bridge.engine.entries import entry_time, parse_entry
from bridge.engine.errors import safe_trace
from bridge.engine.pacing import Pacing
from bridge.engine.partitions import Partition, lead_share
from bridge.engine.standing import decide_standing
from bridge.metrics.worker import WorkerMetrics

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
# Group commit: after a read that found work, the router waits this long before the next one,
# so that under load entries arriving meanwhile are loaded, decided and committed together (one
# read, one load and one commit for several). An entry arriving in that moment waits for it; one
# arriving when the router is idle does not wait at all. On the 2-core machine at 500 messages/s
# it took the worker's Redis round trips per message from 4.1 to 3.1 and its CPU from about
# 1.21 to 1.06 ms (bench/relay.py --targets).
GATHER_S = 0.002
# After a read that found several entries (the stream is busy: arrivals come faster than one pass),
# the wait is longer, so the batches grow with the load. A quiet stream's read finds one entry, so
# a lone message is never held longer than before. The worker's CPU per message at 500/s, side by
# side with the 2 ms wait alone: 1.06 against 1.19 ms (bench/relay.py --targets; README).
GATHER_BUSY_S = 0.005


class Conflicted(RuntimeError):
    """The state kept changing under a pass: the entry stays pending."""


class Takers(Protocol):
    """Idle deliverers of the same process, which take the lanes a commit makes due."""

    lease_ms: int

    def reserve(self) -> tuple[str, int]:
        """A fresh lease token for one commit's hand-off, and how many lanes they can start on
        at once, held for this commit (several partitions' commits may be under way at once)
        until take() says what it handed."""
        ...

    def take(self, token: str, reserved: int, claims: list[Claim]) -> None: ...


class Router(Decider):
    """The router of one worker process."""

    def __init__(self, *, name: str, policy: Policy, channel: str, redis: RedisClient, store: Store) -> None:
        self.name = name
        self.metrics = WorkerMetrics()  # the worker puts its own here (one registry per worker)
        self.policy = policy
        self.channel = channel
        self.redis = redis
        self.store = store
        self.stopping = asyncio.Event()
        self._next_fire = 0.0  # when to look for due timers next (wall clock, like their due times)
        # Set by the worker: how posts into a channel are paced (their lane items' tags).
        self.pacing: Pacing | None = None
        # Set by the worker: a commit leases the lanes it makes due for the process's idle
        # deliverers, in the same step (a round trip and a wake-up fewer per delivery).
        self.takers: Takers | None = None

    # --- leading ---------------------------------------------------------------------

    @property
    def first_partition(self) -> Partition:
        """Partition 0 (a deployment's only one, unless it has several)."""
        return Partition.of(self.store.keys, 0)

    async def route_forever(self) -> None:
        """Lead this worker's share of the partitions until stopping (partitions.py)."""
        await lead_share(self, ROUTER_LEASE_MS)

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def lead(self, partition: Partition | None = None, *, step_down: asyncio.Event | None = None) -> None:
        """Process a partition's stream in order while holding its lease; stop before the lease
        could lapse, or between two batches once step_down is set (it is handed over).

        The router first works through entries already delivered to it (its own pending
        list, which after a take-over holds the previous leader's unfinished entries), and
        goes back to them whenever it stopped a batch early, so order holds.
        """
        part = partition or self.first_partition
        down = step_down or asyncio.Event()
        claim_from = "0-0"
        while True:  # take over all of an earlier leader's pending entries
            result: Any = await self.redis.xautoclaim(part.stream, "router", self.name, 0, claim_from, count=1000)
            claim_from = as_text(result[0])
            if claim_from == "0-0":
                break
        valid_until = time.monotonic() + ROUTER_LEASE_MS / 1000
        standing_due = 0.0
        cursor = "0"
        try:
            while not self.stopping.is_set() and not down.is_set():
                if time.monotonic() > valid_until - ROUTER_LEASE_MS / 2000:
                    if not await self.store.renew_router_lease(self.name, ROUTER_LEASE_MS, partition=part.index):
                        log.warning("router lease lost name=%s partition=%d", self.name, part.index)
                        return
                    valid_until = time.monotonic() + ROUTER_LEASE_MS / 1000
                if part.fires_timers and time.monotonic() >= standing_due:
                    await self.standing_pass(time.time())
                    standing_due = time.monotonic() + STANDING_EVERY_S
                # Due timers join the stream here, so they are decided in order with events. The
                # router arms every timer itself (in its commits), so it knows when to look next.
                if part.fires_timers and time.time() >= self._next_fire:
                    fired, next_timer, lateness = await self.store.fire_due_timers(limit=TIMERS_PER_LOOK)
                    self.metrics.timers_fired(lateness)
                    wait = 0.0 if fired >= TIMERS_PER_LOOK else min(next_timer or LOOK_FOR_TIMERS_S, LOOK_FOR_TIMERS_S)
                    self._next_fire = time.time() + wait
                wake_at = self._next_fire if part.fires_timers else time.time() + 1
                block_ms = max(1, min(1000, int((wake_at - time.time()) * 1000) + 1))
                response: Any = await self.redis.xreadgroup(
                    "router",
                    self.name,
                    {part.stream: cursor},
                    count=ROUTER_BATCH,
                    block=None if cursor == "0" else block_ms,
                )
                entries = response[0][1] if response else []
                if cursor == "0" and not entries:
                    cursor = ">"  # our pending entries are done; now new ones
                    continue
                batch = [(as_text(entry_id), fields) for entry_id, fields in entries]
                while batch:
                    if time.monotonic() > valid_until - 0.5 or self.stopping.is_set() or down.is_set():
                        cursor = "0"  # the rest of this batch is pending: read it again first
                        break
                    done = await self.route_together(batch, part)
                    if not done:
                        try:
                            await self.route_entry(*batch[0], partition=part)
                        except Conflicted:  # other partitions kept changing what it reads: again soon
                            log.info("entry left pending after conflicts partition=%d", part.index)
                            cursor = "0"
                            await asyncio.sleep(random.uniform(0.005, 0.05))
                            break
                        done = 1
                    del batch[:done]
                if entries and len(entries) < BATCH_TOGETHER:
                    await asyncio.sleep(GATHER_BUSY_S if len(entries) > 1 else GATHER_S)
        finally:
            if self.stopping.is_set() or down.is_set():
                with contextlib.suppress(Exception):
                    await self.store.release_router_lease(self.name, partition=part.index)
                if down.is_set() and not self.stopping.is_set():
                    log.info("router handed over name=%s partition=%d", self.name, part.index)

    # --- one pass ----------------------------------------------------------------------

    async def route_entry(
        self, entry_id: str, fields: dict[Any, Any] | None, *, partition: Partition | None = None
    ) -> None:
        """Decide one recorded event and commit the decision with the entry's acknowledgement.

        Safe to repeat: after a commit the entry is gone and a repeat finds nothing to do;
        before it, nothing was written and a repeat decides the same from the same state.
        """
        part = partition or self.first_partition
        fields = fields or {}  # a pending entry whose content is gone reads as None
        source = "?"
        try:
            source = as_text(fields.get(b"source", fields.get("source", b"")))
            await self.pass_once(entry_id, parse_entry(fields), partition=part)
        except (RedisError, OSError, Conflicted):
            raise  # the entry stays pending; the router reads it again once Redis answers
        except Exception as exc:
            # A poison event must not stop the router, and must not be lost either: it is set
            # aside for an operator. Only the error's type and frames are logged, never content.
            log.error("routing failed entry=%s source=%s; set aside\n%s", entry_id, source, safe_trace(exc))
            why = f"could not be decided: {type(exc).__name__}"
            await self.store.set_aside(entry_id, fields, why=why, partition=part.index)

    async def route_together(
        self, batch: list[tuple[str, dict[Any, Any] | None]], partition: Partition | None = None
    ) -> int:
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
        part = partition or self.first_partition
        window_s, pool = self.policy.flood_window_seconds, pool_of(self.policy)
        requests = [
            ChildRequest(event.child_id, entry_time(entry_id), window_s)
            if isinstance(event, ChildMessage)
            else ThreadRequest(ThreadTs(event.thread_ts or ""), event.channel, pool)
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
                decision = self._counsellor_message_from(event, load, part.marker(entry_id), now, loaded)
            # What this decision was made from must not be what an earlier one in the batch
            # changes: the same case, the same child, or the case sequence.
            marks = {*(("case", n) for n in loaded.cases), *loaded.fields, *loaded.values}
            if marks & touched:
                break
            touched |= marks
            plans.append((self._plan(decision, loaded, now=now, entry_id=entry_id, ops=ops, partition=part), decision))
        if len(plans) < 2:
            return 0
        if await self._commit(ops) is not Committed.DONE:
            return 0  # changed meanwhile, or committed by another router: one at a time then
        for plan, decision in plans:
            self._committed(plan, decision)
        return len(plans)

    async def pass_once(self, entry_id: str, event: InboundEvent, *, partition: Partition | None = None) -> Committed:
        """Load, decide, commit; again from fresh reads if the state changed meanwhile."""
        part = partition or self.first_partition
        now = entry_time(entry_id)
        for _ in range(PASSES_PER_ENTRY):
            loaded = Loaded()
            decision = await self.decide(part.marker(entry_id), event, now, loaded)
            result = await self.commit(decision, loaded, now=now, entry_id=entry_id, partition=part)
            if result is not Committed.CONFLICT:
                return result
            log.info("state changed during a pass entry=%s; deciding again", entry_id)
        raise Conflicted(entry_id)

    async def commit(
        self,
        decision: core.Decision,
        loaded: Loaded,
        *,
        now: float,
        entry_id: str | None,
        partition: Partition | None = None,
    ) -> Committed:
        plan = self._plan(decision, loaded, now=now, entry_id=entry_id, partition=partition)
        if plan.ops.count == 0:
            return Committed.DONE
        result = await self._commit(plan.ops)
        if result is Committed.DONE:
            self._committed(plan, decision)
        return result

    async def _commit(self, ops: Ops) -> Committed:
        takers = self.takers
        token, room = takers.reserve() if takers is not None else ("", 0)
        if takers is None or room == 0:
            return await self.store.commit(ops)
        claims: list[Claim] = []
        try:
            result, claims = await self.store.commit_handing_off(
                ops, token=token, lease_ms=takers.lease_ms, max_lanes=room
            )
        finally:
            takers.take(token, room, claims)  # (none on an error: the reservation is given back)
        return result

    def _plan(
        self,
        decision: core.Decision,
        loaded: Loaded,
        *,
        now: float,
        entry_id: str | None,
        ops: Ops | None = None,
        partition: Partition | None = None,
    ) -> Plan:
        part = partition or self.first_partition
        plan = Plan(
            keys=self.store.keys,
            loaded=loaded,
            child_key=self.store.child_key,
            now=now,
            audit_retention_days=self.policy.audit_retention_days,
            ops=ops,
            pace=self.pacing.tag if self.pacing is not None else None,
        )
        marker = part.marker(entry_id) if entry_id else f"standing-{int(now * 1000)}"
        plan.effects(decision.effects, entry_id=marker)
        plan.deliveries(decision.deliveries, item_prefix=marker, now_ms=now_ms())
        plan.checks()
        if entry_id is not None:
            plan.entry(entry_id, stream=part.stream)
        return plan

    def _committed(self, plan: Plan, decision: core.Decision) -> None:
        plan.log_notes()
        for effect in decision.effects:
            if isinstance(effect, core.ScheduleTimer):  # armed now: look for it when it is due
                self._next_fire = min(self._next_fire, effect.at)

    async def standing_pass(self, now: float) -> None:
        """What must happen whatever arrives (standing.py): the next closing reminder, the
        retention of personal data and the review of old blocks. A commit that finds a case
        changed meanwhile is left for the next pass, a minute later."""
        loaded = Loaded()
        decision = await decide_standing(self.store, self.policy, now, loaded)
        await self.commit(decision, loaded, now=now, entry_id=None)
