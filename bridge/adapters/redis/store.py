"""The bridge's reads of Redis, and the atomic steps of the inbound stream and the delivery
lanes. The keys, their hash tags and the slot layout are described in keys.py; every change of
state the core decides is written by one commit (commit.py), not here.

A child's words live in Redis only while in transit: a processed stream entry is
deleted, a delivered item is popped from its lane.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bridge.adapters.redis.commit import Committed, Committer, Ops
from bridge.adapters.redis.keys import Keys
from bridge.core.case import Block, Case, CaseStatus
from bridge.core.rules.controls import Roster
from bridge.core.rules.floods import Recent

DEDUP_TTL_SECONDS = 7 * 24 * 3600  # LINE and Slack redeliver within hours; a week is ample.
FIRED_MARKER_TTL_SECONDS = 7 * 24 * 3600  # longer than any backlog the router could have


# --- Lua ---------------------------------------------------------------------------

# KEYS[1] stream, KEYS[2..n+1] seen markers; ARGV[1] ttl, then per event: source, body.
# One round trip records a whole webhook body; duplicates are skipped.
_RECORD = """
local recorded = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'source', ARGV[i * 2 - 2], 'body', ARGV[i * 2 - 1])
    recorded = recorded + 1
  end
end
return recorded
"""

# KEYS[1] case hash, KEYS[2] by-thread, KEYS[3] lane threads; ARGV: number, thread ts, lane.
# Records the Slack thread of a case once (the root post's answer, or the earlier post found).
_SET_THREAD = """
if redis.call('HSETNX', KEYS[1], 'thread_ts', ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'v', 1)
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
end
redis.call('HSETNX', KEYS[3], ARGV[3], redis.call('HGET', KEYS[1], 'thread_ts'))
return 1
"""

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
return {open or '', case, block or '', blocked_case, redis.call('LRANGE', KEYS[5], 0, -1),
  redis.call('GET', KEYS[6]) or '', redis.call('GET', KEYS[3]) or '', recent, stickers,
  redis.call('HLEN', KEYS[1]), redis.call('ZCARD', KEYS[4])}
"""

# KEYS[1] by-thread; ARGV: cases prefix, thread ts. Reads only: the case of a Slack thread.
_CASE_OF_THREAD = """
local number = redis.call('HGET', KEYS[1], ARGV[2])
if not number then return {} end
return redis.call('HGETALL', ARGV[1] .. 'case:' .. number)
"""

# KEYS[1] due, KEYS[2] attempts, KEYS[3] lane threads; ARGV: lanes prefix, now, lease ms, token,
# max. Claims up to max due lanes: returns a flat list lane, item, attempts, thread ts, ...
# A claimed lane's due time moves to its lease expiry, so a worker that dies mid-delivery
# hands the lane back by itself. Lanes to a paused platform move to the end of the pause.
_CLAIM = """
local now = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local max = tonumber(ARGV[5])
local out = {}
local lanes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max * 4)
for _, lane in ipairs(lanes) do
  if #out >= max * 3 then break end
  local platform = string.match(lane, '^([%w]+):')
  local pause = redis.call('PTTL', ARGV[1] .. 'pause:' .. (platform or ''))
  if pause > 0 then
    redis.call('ZADD', KEYS[1], now + pause, lane)
  else
    local lease_key = ARGV[1] .. 'lease:' .. lane
    if redis.call('SET', lease_key, ARGV[4], 'NX', 'PX', lease_ms) then
      local item = redis.call('LINDEX', ARGV[1] .. 'lane:' .. lane, 0)
      if not item then
        redis.call('ZREM', KEYS[1], lane)
        redis.call('DEL', lease_key)
      else
        redis.call('ZADD', KEYS[1], now + lease_ms, lane)
        local id = string.match(item, '^([^|]*)|')
        local n = redis.call('HINCRBY', KEYS[2], id, 1)
        table.insert(out, lane)
        table.insert(out, item)
        table.insert(out, n)
        table.insert(out, redis.call('HGET', KEYS[3], lane) or '')
      end
    else
      local left = redis.call('PTTL', lease_key)
      if left > 0 then redis.call('ZADD', KEYS[1], now + left, lane) end
    end
  end
end
return out
"""

# KEYS[1] due, KEYS[2] attempts, KEYS[3] set-aside stream; ARGV: lanes prefix, lane, token,
# item id, now, wake channel, aside ('1' moves the item to the set-aside stream), then
# follow-up lane, item pairs. Pops the item if it is still the head, enqueues follow-ups in
# the same step, and releases the lease if still ours.
_COMPLETE = """
local lane_key = ARGV[1] .. 'lane:' .. ARGV[2]
local head = redis.call('LINDEX', lane_key, 0)
local popped = 0
if head and string.match(head, '^([^|]*)|') == ARGV[4] then
  if ARGV[7] == '1' then
    redis.call('XADD', KEYS[3], '*', 'lane', ARGV[2], 'item', head)
  end
  redis.call('LPOP', lane_key)
  redis.call('HDEL', KEYS[2], ARGV[4])
  popped = 1
  for i = 8, #ARGV, 2 do
    redis.call('RPUSH', ARGV[1] .. 'lane:' .. ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[1], 'NX', ARGV[5], ARGV[i])
  end
end
local lease_key = ARGV[1] .. 'lease:' .. ARGV[2]
local mine = redis.call('GET', lease_key) == ARGV[3]
if mine then redis.call('DEL', lease_key) end
if redis.call('LLEN', lane_key) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[2])
elseif mine then
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
end
if popped == 1 then redis.call('PUBLISH', ARGV[6], '1') end
return popped
"""

# KEYS[1] due; ARGV: lanes prefix, lane, token, due at, item id, replacement item ('' keeps it).
_RETRY = """
local lease_key = ARGV[1] .. 'lease:' .. ARGV[2]
if redis.call('GET', lease_key) ~= ARGV[3] then return 0 end
if ARGV[6] ~= '' then
  local lane_key = ARGV[1] .. 'lane:' .. ARGV[2]
  local head = redis.call('LINDEX', lane_key, 0)
  if head and string.match(head, '^([^|]*)|') == ARGV[5] then redis.call('LSET', lane_key, 0, ARGV[6]) end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
redis.call('DEL', lease_key)
return 1
"""

# KEYS[1] due; ARGV: lanes prefix, lane, token, lease ms, now. Extends a lane lease still ours.
_RENEW_LANE = """
local lease_key = ARGV[1] .. 'lease:' .. ARGV[2]
if redis.call('GET', lease_key) ~= ARGV[3] then return 0 end
redis.call('PEXPIRE', lease_key, ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[5]) + tonumber(ARGV[4]), ARGV[2])
return 1
"""

# KEYS[1] router lease; ARGV token, ms. Takes the lease if free, or extends it if ours.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] timers, KEYS[2] inbound stream; ARGV: now ms, max, fired-marker prefix, marker ttl.
# Moves due timers into the stream, where the router decides them in order with everything
# else, and marks each as fired so a late event cannot arm it again. Returns {fired, next due ms}.
_FIRE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('SET', ARGV[3] .. member, '1', 'EX', ARGV[4])
  redis.call('XADD', KEYS[2], '*', 'source', 'timer', 'body', member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, first[2] or -1}
"""

# KEYS[1] router lease; ARGV token, ms. Extends the lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds the lane lease for."""

    lane: str
    item_id: str
    payload: dict[str, Any]
    attempts: int
    enqueued_ms: int
    thread_ts: str | None = None  # the Slack thread of the lane's case, once its root is posted


@dataclass(frozen=True)
class CaseRecord:
    """A case as loaded, with what a commit checks it against: its version."""

    case: Case
    version: str
    child_key: str


@dataclass(frozen=True)
class ChildLoad:
    """Everything known of the child writing now, read in one round trip, with the values a
    commit checks (the child's open case and block, the case sequence) as they were read."""

    open_case: CaseRecord | None
    open_number_raw: str | None
    block: Block | None
    block_raw: str | None
    blocked_case: CaseRecord | None
    history: tuple[int, ...]
    closed_notice: str | None
    seq_raw: str | None
    recent: Recent
    open_cases: int
    unanswered: int


def encode_item(item_id: str, payload: dict[str, Any], enqueued_ms: int) -> str:
    """A lane item: "id|json". The id comes first so Lua can compare heads without JSON."""
    if "|" in item_id:
        raise ValueError("item ids may not contain '|'")
    body = {"at": enqueued_ms, "delivery": payload}
    # ASCII escapes: a lone surrogate from a client must not make the Redis client fail.
    return item_id + "|" + json.dumps(body, ensure_ascii=True, separators=(",", ":"))


def decode_item(raw: str) -> tuple[str, dict[str, Any], int]:
    item_id, _, body = raw.partition("|")
    document = json.loads(body)
    return item_id, document["delivery"], int(document["at"])


class Store:
    """The bridge's state in Redis. Every method is one round trip unless it says otherwise."""

    def __init__(self, redis: Redis, *, child_key_secret: bytes | None = None, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()
        self._child_key_secret = child_key_secret
        self._committer = Committer(redis, wake_channel=self.keys.wake_channel)
        self._record = redis.register_script(_RECORD)
        self._set_thread = redis.register_script(_SET_THREAD)
        self._load_child = redis.register_script(_LOAD_CHILD)
        self._case_of_thread = redis.register_script(_CASE_OF_THREAD)
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._retry = redis.register_script(_RETRY)
        self._renew = redis.register_script(_RENEW)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew_lane = redis.register_script(_RENEW_LANE)
        self._fire = redis.register_script(_FIRE)

    async def prepare(self) -> None:
        """Load the pseudonym key, making it on first use. Stored in Redis, so it stays the
        same when secrets are rotated and every worker derives the same names."""
        if self._child_key_secret is None:
            await self.redis.set(self.keys.pseudonym_key, secrets.token_hex(32), nx=True)
            stored = await self.redis.get(self.keys.pseudonym_key)
            if stored is None:
                raise RuntimeError("the pseudonym key vanished from Redis")
            self._child_key_secret = as_text(stored).encode()
        await self._know_lane_threads()

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

    def child_key(self, child_id: str) -> str:
        """A stable pseudonym for a LINE user ID, so key names never carry the ID itself."""
        if self._child_key_secret is None:
            raise RuntimeError("Store.prepare() must run before child keys are derived")
        return hmac.new(self._child_key_secret, child_id.encode(), hashlib.sha256).hexdigest()[:32]

    async def commit(self, ops: Ops) -> Committed:
        """Write a decision in one atomic step (see commit.py)."""
        return await self._committer.commit(ops, now_ms=now_ms())

    # --- inbound ----------------------------------------------------------------------

    async def record_events(self, source: str, events: Sequence[tuple[str, str]]) -> int:
        """Append (dedup_id, body) events to the inbound stream, skipping ids seen before.

        Returns how many were new. Atomic: an event is either recorded and marked, or neither.
        """
        if not events:
            return 0
        keys = [self.keys.inbound] + [self.keys.seen(source, event_id) for event_id, _ in events]
        args: list[str | int] = [DEDUP_TTL_SECONDS]
        for _, body in events:
            args += [source, body]
        return int(await self._record(keys=keys, args=args))

    async def ensure_router_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.inbound, "router", id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists already
            if "BUSYGROUP" not in str(exc):
                raise

    async def set_aside(self, entry_id: str, fields: dict[Any, Any]) -> None:
        """Move an entry the router could not decide to the set-aside stream for an operator."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.keys.set_aside, {**fields, "entry": entry_id}, maxlen=10_000, approximate=True)
        pipe.xack(self.keys.inbound, "router", entry_id)
        pipe.xdel(self.keys.inbound, entry_id)
        await pipe.execute()

    async def acquire_router_lease(self, token: str, ms: int) -> bool:
        """Take the router lease if free (or extend it if this token already holds it)."""
        return bool(await self._acquire(keys=[self.keys.router_lease], args=[token, ms]))

    async def renew_router_lease(self, token: str, ms: int) -> bool:
        return bool(await self._renew(keys=[self.keys.router_lease], args=[token, ms]))

    async def release_router_lease(self, token: str) -> None:
        await self._renew(keys=[self.keys.router_lease], args=[token, 1])

    # --- reads for decisions ----------------------------------------------------------

    async def load_child(self, child_id: str, *, now: float, window_s: int) -> ChildLoad:
        """What a child's message is decided from, in one round trip (reads only)."""
        child_key = self.child_key(child_id)
        reply: Any = await self._load_child(
            keys=[
                self.keys.open_by_child,
                self.keys.blocked,
                self.keys.case_seq,
                self.keys.unanswered,
                self.keys.history(child_key),
                self.keys.closed_notice(child_key),
            ],
            args=[self.keys.cases_prefix, child_key, int((now - window_s) * 1000), int(now * 1000)],
        )
        open_raw, case_raw, block_raw, blocked_raw, history, notice, seq, recent, stickers, opened, waiting = reply
        open_text, block_text = as_text(open_raw), as_text(block_raw)
        return ChildLoad(
            open_case=_record_from(_pairs(case_raw)),
            open_number_raw=open_text or None,
            block=_block_from(block_text) if block_text else None,
            block_raw=block_text or None,
            blocked_case=_record_from(_pairs(blocked_raw)),
            history=tuple(int(as_text(n)) for n in history),
            closed_notice=as_text(notice) or None,
            seq_raw=as_text(seq) or None,
            recent=Recent(messages=int(recent), stickers=int(stickers)),
            open_cases=int(opened),
            unanswered=int(waiting),
        )

    async def case_record(self, number: int) -> CaseRecord | None:
        return _record_from(await self.redis.hgetall(self.keys.case(number)))

    async def case_records(self, numbers: Sequence[int]) -> list[CaseRecord]:
        """The cases that exist among these numbers, in the same order (one round trip)."""
        if not numbers:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self.keys.case(number))
        return [record for raw in await pipe.execute() if (record := _record_from(raw)) is not None]

    async def case_record_of_thread(self, thread_ts: str) -> CaseRecord | None:
        """The case whose Slack thread this is (one round trip)."""
        raw: Any = await self._case_of_thread(keys=[self.keys.by_thread], args=[self.keys.cases_prefix, thread_ts])
        return _record_from(_pairs(raw))

    async def get_case(self, number: int) -> Case | None:
        record = await self.case_record(number)
        return record.case if record is not None else None

    async def get_cases(self, numbers: Sequence[int]) -> list[Case]:
        return [record.case for record in await self.case_records(numbers)]

    async def open_case_records(self) -> list[CaseRecord]:
        """Every open case, by number (one round trip for the list, one for the cases)."""
        numbers = sorted(int(n) for n in await self.redis.hvals(self.keys.open_by_child))
        return await self.case_records(numbers)

    async def open_cases(self) -> list[Case]:
        return [record.case for record in await self.open_case_records()]

    async def case_by_thread(self, thread_ts: str) -> int | None:
        number = await self.redis.hget(self.keys.by_thread, thread_ts)
        return int(number) if number is not None else None

    async def queue_counts(self, number: int) -> tuple[int, int]:
        """(open cases, unanswered open cases opened before this one), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(self.keys.open_by_child)
        pipe.zcount(self.keys.unanswered, "-inf", f"({number}")
        opened, before = await pipe.execute()
        return int(opened), int(before)

    async def open_case_of(self, child_id: str) -> int | None:
        number = await self.redis.hget(self.keys.open_by_child, self.child_key(child_id))
        return int(number) if number is not None else None

    async def open_number_of_key(self, child_key: str) -> str | None:
        """The open case number of a child (by pseudonym), as stored, if any."""
        number = await self.redis.hget(self.keys.open_by_child, child_key)
        return as_text(number) if number is not None else None

    async def block_raw_of_key(self, child_key: str) -> str | None:
        """A child's block (by pseudonym), as stored, if any."""
        raw = await self.redis.hget(self.keys.blocked, child_key)
        return as_text(raw) if raw is not None else None

    @staticmethod
    def block_from(raw: str) -> Block:
        """A block as stored."""
        return _block_from(raw)

    async def block_of(self, child_id: str) -> Block | None:
        """The block of the child writing now, if any."""
        raw = await self.block_raw_of_key(self.child_key(child_id))
        return _block_from(raw) if raw is not None else None

    async def block_of_case(self, number: int) -> Block | None:
        """The block of a case's child, if any (works after the LINE user ID was erased)."""
        record = await self.case_record(number)
        raw = await self.block_raw_of_key(record.child_key) if record is not None else None
        return _block_from(raw) if raw is not None else None

    async def closed_notice_of(self, child_id: str) -> str | None:
        """The closed period for which the child last got the out-of-hours reply."""
        value = await self.redis.get(self.keys.closed_notice(self.child_key(child_id)))
        return as_text(value) if value is not None else None

    async def closed_arrivals(self) -> list[tuple[int, float]]:
        rows: Any = await self.redis.zrange(self.keys.closed_arrivals, 0, -1, withscores=True)
        return [(int(as_text(member)), float(score)) for member, score in rows]

    async def closed_before(self, cutoff: float, *, limit: int = 500) -> list[int]:
        """Closed cases that still hold their child's LINE user ID and closed before cutoff."""
        rows: Any = await self.redis.zrangebyscore(self.keys.closed_index, "-inf", cutoff, start=0, num=limit)
        return [int(as_text(n)) for n in rows]

    async def held_of(self, number: int) -> tuple[list[str], int]:
        """What a flood hold kept back: the texts in order, and how many stickers."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.keys.held(number), 0, -1)
        pipe.hget(self.keys.case(number), "held_stickers")
        texts, stickers = await pipe.execute()
        return [as_text(t) for t in texts], int(stickers or 0)

    async def audit_records(self, *, since: float = 0, case: int | None = None) -> list[dict[str, str]]:
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

    # --- timers ------------------------------------------------------------------------

    async def fire_due_timers(self, *, limit: int = 100) -> tuple[int, float | None]:
        """Move due timers into the inbound stream. Returns (how many, seconds until the next)."""
        fired, next_ms = await self._fire(
            keys=[self.keys.timers, self.keys.inbound],
            args=[now_ms(), limit, self.keys.fired_prefix, FIRED_MARKER_TTL_SECONDS],
        )
        next_ms = float(next_ms)
        return int(fired), (max(0.0, (next_ms - now_ms()) / 1000) if next_ms >= 0 else None)

    # --- the roster of who may use the controls ----------------------------------------

    async def save_roster(self, members: Iterable[str], group_supervisors: Iterable[str] | None, *, at: float) -> None:
        """Replace the roster with a fresh copy from Slack, in one step (group_supervisors None
        keeps the stored list: the group could not be read)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.roster_members)
        if member_list := list(members):
            pipe.sadd(self.keys.roster_members, *member_list)
        if group_supervisors is not None:
            pipe.delete(self.keys.roster_supervisors)
            if supervisor_list := list(group_supervisors):
                pipe.sadd(self.keys.roster_supervisors, *supervisor_list)
        pipe.set(self.keys.roster_at, f"{at:.3f}")
        await pipe.execute()

    async def roster(self) -> Roster | None:
        """The roster, or None if it was never fetched."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.roster_at)
        pipe.smembers(self.keys.roster_members)
        pipe.smembers(self.keys.roster_supervisors)
        at, members, supervisors = await pipe.execute()
        if at is None:
            return None
        return Roster(
            members=frozenset(as_text(m) for m in members),
            group_supervisors=frozenset(as_text(m) for m in supervisors),
        )

    # --- delivery lanes ---------------------------------------------------------------

    async def record_thread(self, number: int, lane: str, thread_ts: str) -> None:
        """Record a case's Slack thread once: on the case, in the lookup by thread, and for its
        lane, whose later deliveries post into it. Recording it again changes nothing."""
        await self._set_thread(
            keys=[self.keys.case(number), self.keys.by_thread, self.keys.lane_threads], args=[number, thread_ts, lane]
        )

    async def claim(self, *, token: str, lease_ms: int, max_lanes: int) -> list[Claim]:
        raw = await self._claim(
            keys=[self.keys.due, self.keys.attempts, self.keys.lane_threads],
            args=[self.keys.lanes_prefix, now_ms(), lease_ms, token, max_lanes],
        )
        claims = []
        for i in range(0, len(raw), 4):
            item_id, payload, enqueued_ms = decode_item(as_text(raw[i + 1]))
            claims.append(
                Claim(
                    lane=as_text(raw[i]),
                    item_id=item_id,
                    payload=payload,
                    attempts=int(raw[i + 2]),
                    enqueued_ms=enqueued_ms,
                    thread_ts=as_text(raw[i + 3]) or None,
                )
            )
        return claims

    async def complete(
        self,
        claim: Claim,
        *,
        token: str,
        followups: Sequence[tuple[str, str, dict[str, Any]]] = (),
        set_aside: bool = False,
    ) -> bool:
        """Pop a delivered (or finally failed) item and append its follow-ups in one step.

        With set_aside, the item is kept in the set-aside stream for an operator instead.
        """
        now = now_ms()
        args: list[str | int] = [
            self.keys.lanes_prefix,
            claim.lane,
            token,
            claim.item_id,
            now,
            self.keys.wake_channel,
            "1" if set_aside else "0",
        ]
        for lane, item_id, payload in followups:
            args += [lane, encode_item(item_id, payload, now)]
        keys = [self.keys.due, self.keys.attempts, self.keys.deliveries_set_aside]
        return bool(await self._complete(keys=keys, args=args))

    async def set_aside_delivery(self, claim: Claim, *, token: str) -> bool:
        """Take an item out of its lane into the set-aside stream, so the lane moves on."""
        return await self.complete(claim, token=token, set_aside=True)

    async def renew_lane_lease(self, lane: str, *, token: str, lease_ms: int) -> bool:
        """Extend a lane lease this token holds; False if it was lost to another worker."""
        args: list[str | int] = [self.keys.lanes_prefix, lane, token, lease_ms, now_ms()]
        return bool(await self._renew_lane(keys=[self.keys.due], args=args))

    async def retry_later(
        self, claim: Claim, *, token: str, delay_s: float, replacement: dict[str, Any] | None = None
    ) -> bool:
        """Release the lane until delay_s from now, optionally replacing the head item's payload."""
        new_item = encode_item(claim.item_id, replacement, claim.enqueued_ms) if replacement is not None else ""
        return bool(
            await self._retry(
                keys=[self.keys.due],
                args=[
                    self.keys.lanes_prefix,
                    claim.lane,
                    token,
                    now_ms() + int(delay_s * 1000),
                    claim.item_id,
                    new_item,
                ],
            )
        )

    async def pause_platform(self, platform: str, seconds: float) -> None:
        """Pause every lane towards a platform (after a 429) for the given time."""
        await self.redis.set(self.keys.platform_pause(platform), "1", px=max(1, int(seconds * 1000)))

    async def next_due_in(self) -> float | None:
        """Seconds until the earliest lane is due (0 if overdue), or None if nothing is queued."""
        first = await self.redis.zrange(self.keys.due, 0, 0, withscores=True)
        if not first:
            return None
        return max(0.0, (float(first[0][1]) - now_ms()) / 1000)


def _case_from(raw: dict[Any, Any]) -> Case | None:
    if not raw:
        return None
    fields = {as_text(k): as_text(v) for k, v in raw.items()}

    def moment(name: str) -> float | None:
        return float(fields[name]) if name in fields else None

    return Case(
        number=int(fields["number"]),
        status=CaseStatus(fields["status"]),
        child_id=fields.get("child", ""),  # "" once forgotten after the retention period
        opened_at=float(fields["opened_at"]),
        thread_ts=fields.get("thread_ts"),
        closed_at=moment("closed_at"),
        closed_reason=fields.get("closed_reason"),
        arrived_closed=fields.get("arrived_closed") == "1",
        counsellor=fields.get("counsellor"),
        counsellor_since=moment("counsellor_since"),
        last_counsellor_at=moment("last_counsellor_at"),
        last_child_at=moment("last_child_at"),
        hold=fields.get("hold") == "1",
        busy_notified=fields.get("busy_notified") == "1",
        earlier=tuple(int(n) for n in fields.get("earlier", "").split(",") if n),
        closed_by=fields.get("closed_by") or None,
        urgent=fields.get("urgent") == "1",
        blocked=fields.get("blocked") == "1",
        blocked_count=int(fields.get("blocked_count") or 0),
        flood_until=moment("flood_until"),
        blocked_risk=fields.get("blocked_risk") == "1",
    )


def _record_from(raw: dict[Any, Any]) -> CaseRecord | None:
    case = _case_from(raw)
    if case is None:
        return None
    fields = {as_text(k): as_text(v) for k, v in raw.items()}
    return CaseRecord(case=case, version=fields.get("v", ""), child_key=fields.get("child_key", ""))


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A flat [field, value, ...] reply (HGETALL inside a script) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _block_from(raw: str) -> Block:
    record = json.loads(raw)
    return Block(case=int(record["case"]), by=str(record["by"]), at=float(record["at"]), reason=str(record["reason"]))


def as_text(value: bytes | str) -> str:
    """Redis replies as text, whether the client decodes them or not."""
    return value.decode() if isinstance(value, bytes) else value
