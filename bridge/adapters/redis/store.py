"""The bridge's state in Redis: what decisions are made from (reads only), the roster, and the
one commit of a decision. The inbound stream (inbound.py), the lanes (lanes.py) and the reads
of what was set aside (set_aside.py) are parts of the same Store; the keys, their hash tags and
the slot layout are in keys.py, how values are kept in codec.py, and the commit's generic
operations in commit.py.

A child's words live in Redis only while in transit: a processed stream entry is
deleted, a delivered item is popped from its lane.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.adapters.redis.codec import (
    CaseRecord,
    ChildLoad,
    Claim,
    as_text,
    block_from,
    deferred_text,
    pairs,
    record_from,
)
from bridge.adapters.redis.commit import Committed, Committer, HandOff, Ops
from bridge.adapters.redis.connect import RedisClient, keys_for, pipelined_script
from bridge.adapters.redis.heartbeat import HeartbeatStore
from bridge.adapters.redis.inbound import InboundStore
from bridge.adapters.redis.keys import DEFERRED_STICKERS_BEFORE_RENAME, Keys, thread_fields
from bridge.adapters.redis.lanes import LaneStore
from bridge.adapters.redis.pseudonym import check_pseudonym_key
from bridge.adapters.redis.records import RecordsStore
from bridge.adapters.redis.roster import RosterStore
from bridge.adapters.redis.set_aside import SetAsideStore
from bridge.core.case import Block, Case
from bridge.core.ids import CaseNumber, LineUserId, ThreadTs
from bridge.core.rules.floods import Deferred, Recent

# KEYS[1] open-by-child, KEYS[2] blocked, KEYS[3] seq, KEYS[4] unanswered, KEYS[5] history,
# KEYS[6] closed notice; ARGV: cases prefix, child key, window start ms, now ms. Reads only: everything
# the decision on a child's message needs, in one round trip.
_LOAD_CHILD = """
local open = redis.call('HGET', KEYS[1], ARGV[2])
local block = redis.call('HGET', KEYS[2], ARGV[2])
local case, blocked_case, recent, stickers = {}, {}, 0, 0
if open then
  case = redis.call('HGETALL', ARGV[1] .. 'case:' .. open)
  recent = redis.call('ZCOUNT', ARGV[1] .. 'recent-all:' .. open, ARGV[3], ARGV[4])
  stickers = redis.call('ZCOUNT', ARGV[1] .. 'recent-stickers:' .. open, ARGV[3], ARGV[4])
end
if block then
  blocked_case = redis.call('HGETALL', ARGV[1] .. 'case:' .. cjson.decode(block)['case'])
end
return cjson.encode({open or '', case, block or '', blocked_case, redis.call('LRANGE', KEYS[5], 0, -1),
  redis.call('GET', KEYS[6]) or '', redis.call('GET', KEYS[3]) or '', recent, stickers,
  redis.call('HLEN', KEYS[1]), redis.call('ZCARD', KEYS[4])})
"""

# KEYS[1] by-thread; ARGV: cases prefix, then the thread's fields to look for, in order
# (keys.thread_fields). Reads only: the case of a Slack thread, under the first field found.
_CASE_OF_THREAD = """
for i = 2, #ARGV do
  local number = redis.call('HGET', KEYS[1], ARGV[i])
  if number then return cjson.encode(redis.call('HGETALL', ARGV[1] .. 'case:' .. number)) end
end
return '[]'
"""


_CHILD_KEYS_KEPT = 10_000


def handed_token(token: str, n: int) -> str:
    """The lease token of the nth lane a commit handed off for token (see commit_handing_off)."""
    return f"{token}.{n}"


class Store(InboundStore, LaneStore, SetAsideStore, RecordsStore, HeartbeatStore, RosterStore):
    """The bridge's state in Redis. Every method is one round trip unless it says otherwise."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        child_key_secret: bytes | None = None,
        keys: Keys | None = None,
        partitions: int = 1,
    ) -> None:
        """child_key_secret: the pseudonyms' key (BRIDGE_PSEUDONYM_KEY's bytes); without it the
        store reads and writes everything but cannot derive a child's pseudonym (the web process).
        keys: the key layout, by default the one for this client (one server or a cluster).
        partitions: how many partitions the inbound stream has (partitions.py)."""
        self.redis = redis
        self.keys = keys or keys_for(redis)
        self.partitions = partitions
        self._child_key_secret = child_key_secret
        self._child_keys: dict[str, str] = {}  # pseudonyms derived lately (each is an HMAC)
        self._committer = Committer(redis, wake_channel=self.keys.wake_channel)
        self._load_child = redis.register_script(_LOAD_CHILD)
        self._case_of_thread = redis.register_script(_CASE_OF_THREAD)
        self._register_inbound()
        self._register_lanes()

    async def prepare(self) -> None:
        """Check the pseudonym key against the fingerprint kept in Redis (pseudonym.py: raises
        PseudonymKeyRefused for another key, so no process derives other names than the rest),
        then what an upgrade needs."""
        if self._child_key_secret is None:
            raise RuntimeError("a Store made without the pseudonym key cannot be prepared to derive pseudonyms")
        await check_pseudonym_key(self.redis, self.keys, self._child_key_secret)
        await self._know_lane_threads()
        await self._know_closed_cases()

    async def _know_lane_threads(self) -> None:
        """Cases whose thread was recorded before lanes knew their thread (an upgrade): their
        lanes learn it, once. Setting a known one again changes nothing."""
        if await self.redis.exists(self.keys.lane_threads):
            return
        threads: Any = await self.redis.hgetall(self.keys.by_thread)
        if threads:
            mapping = {f"slack:{as_text(number)}": as_text(ts) for ts, number in threads.items()}
            pipe = self.redis.pipeline(transaction=False)
            for lane, ts in mapping.items():
                pipe.hsetnx(self.keys.lane_threads, lane, ts)
            await pipe.execute()

    def child_key(self, child_id: LineUserId) -> str:
        """A stable pseudonym for a LINE user ID, so key names never carry the ID itself."""
        known = self._child_keys.get(child_id)
        if known is not None:
            return known
        if self._child_key_secret is None:
            raise RuntimeError("Store.prepare() must run before child keys are derived")
        if len(self._child_keys) >= _CHILD_KEYS_KEPT:
            self._child_keys.clear()
        key = self._child_keys[child_id] = hmac.new(
            self._child_key_secret, child_id.encode(), hashlib.sha256
        ).hexdigest()[:32]
        return key

    async def commit(self, ops: Ops) -> Committed:
        """Write a decision in one atomic step (see commit.py)."""
        result, _ = await self._committer.commit(ops, now_ms=int(time.time() * 1000))
        return result

    async def commit_handing_off(
        self, ops: Ops, *, token: str, lease_ms: int, max_lanes: int
    ) -> tuple[Committed, list[Claim]]:
        """As commit; and the lanes it makes due, up to max_lanes, are leased in the same step
        and returned (the committing worker delivers them without claiming): the nth returned
        (from 0) for the lease token f"{token}.{n}" (handed_token)."""
        hand_off = HandOff(
            token=token,
            lease_ms=lease_ms,
            max_lanes=max_lanes,
            lanes_prefix=self.keys.lanes_prefix,
            due=self.keys.due,
            attempts=self.keys.attempts,
            lane_threads=self.keys.lane_threads,
        )
        return await self._committer.commit(ops, now_ms=int(time.time() * 1000), hand_off=hand_off)

    # --- reads for decisions ----------------------------------------------------------

    async def load_child(self, child_id: LineUserId, *, now: float, window_s: int) -> ChildLoad:
        """What a child's message is decided from, in one round trip (reads only)."""
        reply: Any = await self._load_child(**self._child_call(child_id, now=now, window_s=window_s))
        return _child_load(reply)

    def _child_call(self, child_id: LineUserId, *, now: float, window_s: int) -> dict[str, Any]:
        child_key = self.child_key(child_id)
        return {
            "keys": [
                self.keys.open_by_child,
                self.keys.blocked,
                self.keys.case_seq,
                self.keys.unanswered,
                self.keys.history(child_key),
                self.keys.closed_notice(child_key),
            ],
            "args": [self.keys.cases_prefix, child_key, int((now - window_s) * 1000), int(now * 1000)],
        }

    async def load_many(self, requests: Sequence[ChildRequest | ThreadRequest]) -> list[ChildLoad | CaseRecord | None]:
        """Several loads in one round trip (a pipeline of reads): a ChildRequest gives what
        load_child gives, a ThreadRequest what case_record_of_thread gives."""
        pipe = self.redis.pipeline(transaction=False)
        for request in requests:
            if isinstance(request, ChildRequest):
                call = self._child_call(request.child_id, now=request.now, window_s=request.window_s)
                await pipelined_script(pipe, self._load_child, call["keys"], call["args"])
            else:
                args = [self.keys.cases_prefix, *thread_fields(request.thread_ts, request.channel, request.pool)]
                await pipelined_script(pipe, self._case_of_thread, [self.keys.by_thread], args)
        replies = await pipe.execute()
        return [
            _child_load(reply) if isinstance(request, ChildRequest) else record_from(pairs(json.loads(reply)))
            for request, reply in zip(requests, replies, strict=True)
        ]

    async def case_record(self, number: CaseNumber) -> CaseRecord | None:
        return record_from(await self.redis.hgetall(self.keys.case(number)))

    async def case_records(self, numbers: Sequence[CaseNumber]) -> list[CaseRecord]:
        """The cases that exist among these numbers, in the same order (one round trip)."""
        if not numbers:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self.keys.case(number))
        return [record for raw in await pipe.execute() if (record := record_from(raw)) is not None]

    async def case_record_of_thread(
        self, thread_ts: ThreadTs, channel: str | None = None, pool: Sequence[str] = ()
    ) -> CaseRecord | None:
        """The case whose Slack thread this is, in this channel of the pool of case channels
        (keys.thread_fields; without a pool, by the ts alone). One round trip."""
        fields = thread_fields(thread_ts, channel, pool)
        raw: Any = await self._case_of_thread(keys=[self.keys.by_thread], args=[self.keys.cases_prefix, *fields])
        return record_from(pairs(json.loads(raw)))

    async def case_channel(self, number: CaseNumber) -> str | None:
        """The pool's channel a case's thread is in (None: SLACK_CHANNEL_ID, or no such case)."""
        channel = await self.redis.hget(self.keys.case(number), "channel")
        return as_text(channel) if channel else None

    async def get_case(self, number: CaseNumber) -> Case | None:
        record = await self.case_record(number)
        return record.case if record is not None else None

    async def get_cases(self, numbers: Sequence[CaseNumber]) -> list[Case]:
        return [record.case for record in await self.case_records(numbers)]

    async def open_case_records(self) -> list[CaseRecord]:
        """Every open case, by number (one round trip for the list, one for the cases)."""
        numbers = sorted(CaseNumber(int(n)) for n in await self.redis.hvals(self.keys.open_by_child))
        return await self.case_records(numbers)

    async def open_cases(self) -> list[Case]:
        return [record.case for record in await self.open_case_records()]

    async def case_by_thread(
        self, thread_ts: ThreadTs, channel: str | None = None, pool: Sequence[str] = ()
    ) -> CaseNumber | None:
        """The number of the case whose thread this is (as case_record_of_thread finds it)."""
        for field in thread_fields(thread_ts, channel, pool):
            number = await self.redis.hget(self.keys.by_thread, field)
            if number is not None:
                return CaseNumber(int(number))
        return None

    async def queue_counts(self, number: CaseNumber) -> tuple[int, int]:
        """(open cases, unanswered open cases opened before this one), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(self.keys.open_by_child)
        pipe.zcount(self.keys.unanswered, "-inf", f"({number}")
        opened, before = await pipe.execute()
        return int(opened), int(before)

    async def open_case_of(self, child_id: LineUserId) -> CaseNumber | None:
        number = await self.redis.hget(self.keys.open_by_child, self.child_key(child_id))
        return CaseNumber(int(number)) if number is not None else None

    async def open_number_of_key(self, child_key: str) -> str | None:
        """The open case number of a child (by pseudonym), as stored, if any."""
        number = await self.redis.hget(self.keys.open_by_child, child_key)
        return as_text(number) if number is not None else None

    async def block_raw_of_key(self, child_key: str) -> str | None:
        """A child's block (by pseudonym), as stored, if any."""
        raw = await self.redis.hget(self.keys.blocked, child_key)
        return as_text(raw) if raw is not None else None

    async def block_of(self, child_id: LineUserId) -> Block | None:
        """The block of the child writing now, if any."""
        raw = await self.block_raw_of_key(self.child_key(child_id))
        return block_from(raw) if raw is not None else None

    async def block_of_case(self, number: CaseNumber) -> Block | None:
        """The block of a case's child, if any (works after the LINE user ID was erased)."""
        record = await self.case_record(number)
        raw = await self.block_raw_of_key(record.child_key) if record is not None else None
        return block_from(raw) if raw is not None else None

    async def closed_arrivals(self) -> list[tuple[CaseNumber, float]]:
        rows: Any = await self.redis.zrange(self.keys.closed_arrivals, 0, -1, withscores=True)
        return [(CaseNumber(int(as_text(member))), float(score)) for member, score in rows]

    async def closed_before(self, cutoff: float, *, limit: int = 500) -> list[CaseNumber]:
        """Closed cases that still hold their child's LINE user ID and closed before cutoff."""
        rows: Any = await self.redis.zrangebyscore(self.keys.closed_index, "-inf", cutoff, start=0, num=limit)
        return [CaseNumber(int(as_text(n))) for n in rows]

    async def deferred_of(self, number: CaseNumber) -> Deferred:
        """What a case's flood cool-down deferred: the texts in order, and how many stickers
        (one round trip). What was deferred before the rename of the keys counts, first."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.keys.deferred_before_rename(number), 0, -1)
        pipe.lrange(self.keys.deferred(number), 0, -1)
        pipe.hmget(self.keys.case(number), [DEFERRED_STICKERS_BEFORE_RENAME, "deferred_stickers", "deferred_dropped"])
        old_texts, texts, (old_stickers, stickers, dropped) = await pipe.execute()
        return Deferred(
            texts=tuple(deferred_text(as_text(t)) for t in [*old_texts, *texts]),
            stickers=int(old_stickers or 0) + int(stickers or 0),
            dropped=int(dropped or 0),
        )

    async def audit_records(self, *, since: float = 0, case: CaseNumber | None = None) -> list[dict[str, str]]:
        """Audit records from `since` on, oldest first, optionally of one case."""
        records = []
        start = f"{int(since * 1000)}-0"
        while True:
            batch: Any = await self.redis.xrange(self.keys.audit, min=start, max="+", count=1000)
            for _, fields in batch:
                record = {as_text(k): as_text(v) for k, v in fields.items()}
                if case is None or record.get("case") == str(case):
                    records.append(record)
            if len(batch) < 1000:
                return records
            start = "(" + as_text(batch[-1][0])


@dataclass(frozen=True)
class ChildRequest:
    """Load what a child's message is decided from (see Store.load_child)."""

    child_id: LineUserId
    now: float
    window_s: int


@dataclass(frozen=True)
class ThreadRequest:
    """Load the case of a Slack thread (see Store.case_record_of_thread)."""

    thread_ts: ThreadTs
    channel: str | None = None
    pool: tuple[str, ...] = ()


def _child_load(reply: Any) -> ChildLoad:
    # One JSON document: parsed in C, instead of a reply of some sixty parts.
    loaded = json.loads(reply)
    open_raw, case_raw, block_raw, blocked_raw, history, notice, seq, recent, stickers, opened, waiting = loaded
    open_text, block_text = as_text(open_raw), as_text(block_raw)
    return ChildLoad(
        open_case=record_from(pairs(case_raw)),
        open_number_raw=open_text or None,
        block=block_from(block_text) if block_text else None,
        block_raw=block_text or None,
        blocked_case=record_from(pairs(blocked_raw)),
        history=tuple(CaseNumber(int(as_text(n))) for n in history),
        closed_notice=as_text(notice) or None,
        seq_raw=as_text(seq) or None,
        recent=Recent(messages=int(recent), stickers=int(stickers)),
        open_cases=int(opened),
        unanswered=int(waiting),
    )
