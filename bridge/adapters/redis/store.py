"""The atomic operations on the bridge's Redis keys. The keys, their hash tags and the slot
layout are described in bridge/adapters/redis/keys.py; each script here touches keys of one tag.

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

from bridge.adapters.redis.keys import Keys
from bridge.core.case import Case, CaseStatus, Queue
from bridge.core.controls import Block, Roster
from bridge.core.safety import Recent

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

# KEYS[1] seq, KEYS[2] open-by-child, KEYS[3] unanswered; ARGV: cases prefix, child key, child id,
# now, arrived closed, opening entry id. Returns {number, created}. At most one open case per
# child, whoever asks.
_OPEN_OR_GET = """
if KEYS[4] then
  local block = redis.call('HGET', KEYS[4], ARGV[2])
  if block then return {0, 0, block} end
end
local existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing then return {tonumber(existing), 0} end
local n = redis.call('INCR', KEYS[1])
local history = ARGV[1] .. 'history:' .. ARGV[2]
local earlier = table.concat(redis.call('LRANGE', history, -10, -1), ',')
redis.call('HSET', ARGV[1] .. 'case:' .. n, 'number', n, 'status', 'open', 'child', ARGV[3],
  'child_key', ARGV[2], 'opened_at', ARGV[4], 'arrived_closed', ARGV[5], 'opened_by', ARGV[6],
  'earlier', earlier)
redis.call('RPUSH', history, n)
redis.call('LTRIM', history, -10, -1)
redis.call('ZADD', KEYS[3], n, n)
redis.call('HSET', KEYS[2], ARGV[2], n)
return {n, 1}
"""

# KEYS[1] case hash, KEYS[2] open-by-child, KEYS[3] unanswered, KEYS[4] closed index; ARGV:
# number, reason, now, by. Returns 1 if it closed now.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'closed', 'closed_at', ARGV[3], 'closed_reason', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'closed_by', ARGV[4]) end
local child_key = redis.call('HGET', KEYS[1], 'child_key')
if child_key and redis.call('HGET', KEYS[2], child_key) == ARGV[1] then
  redis.call('HDEL', KEYS[2], child_key)
end
return 1
"""

# KEYS[1] case hash, KEYS[2] by-thread; ARGV: number, thread ts.
_SET_THREAD = """
if redis.call('HSETNX', KEYS[1], 'thread_ts', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
  return 1
end
return 0
"""

# KEYS[1] due, KEYS[2] applied marker (or '' for none); ARGV: lanes prefix, now, ttl, wake channel,
# then lane, item pairs. Items are "id|json". Applies at most once per marker.
_ENQUEUE = """
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 0 end
end
for i = 5, #ARGV, 2 do
  redis.call('RPUSH', ARGV[1] .. 'lane:' .. ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[i])
end
if #ARGV >= 5 then redis.call('PUBLISH', ARGV[4], '1') end
return 1
"""

# KEYS[1] due, KEYS[2] applied marker; ARGV: lanes prefix, now, ttl, wake channel, effects JSON,
# then lane, item pairs. The first run of an inbound entry enqueues its deliveries and keeps its
# effects under the marker, in one step, and returns nil. Any later run (a replay after a crash)
# enqueues nothing and returns what the first run kept: its effects, or "1" once they were all
# applied. So deliveries and effects always come from the same decision.
_RECORD_DECISION = """
local kept = redis.call('GET', KEYS[2])
if kept then return kept end
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[3])
for i = 6, #ARGV, 2 do
  redis.call('RPUSH', ARGV[1] .. 'lane:' .. ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[i])
end
if #ARGV >= 6 then redis.call('PUBLISH', ARGV[4], '1') end
return false
"""

# KEYS[1] due, KEYS[2] attempts; ARGV: lanes prefix, now, lease ms, token, max.
# Claims up to max due lanes: returns a flat list lane, item, attempts, ...
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

# KEYS[1] case marker, KEYS[2] case hash; ARGV: ttl. Counts a blocked child's message once.
_COUNT_BLOCKED = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
return redis.call('HINCRBY', KEYS[2], 'blocked_count', 1)
"""

# KEYS[1] router lease; ARGV token, ms. Takes the lease if free, or extends it if ours.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] open-by-child, KEYS[2] unanswered; ARGV: number. Returns {open cases, place in line}:
# place = 1 + open cases opened earlier that no counsellor has answered yet. O(log n).
_QUEUE = """
local ahead = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. ARGV[1])
return {redis.call('HLEN', KEYS[1]), ahead + 1}
"""

# KEYS[1] case hash, KEYS[2] unanswered; ARGV: user, now, number. The first counsellor to answer
# stays the case's counsellor.
_ASSIGN = """
redis.call('ZREM', KEYS[2], ARGV[3])
if redis.call('HSETNX', KEYS[1], 'counsellor', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'counsellor_since', ARGV[2])
  return 1
end
return 0
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

# KEYS[1] timers, KEYS[2] fired marker; ARGV: member, due ms. Arms a timer once: never again
# after it fired, and an armed one keeps its time.
_ARM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
"""

# KEYS[1] all recent, KEYS[2] recent stickers; ARGV: member, now ms, window ms, sticker ('1').
# Notes one message (once, however often it is replayed) and counts the window up to it.
_RECENT = """
local since = tonumber(ARGV[2]) - tonumber(ARGV[3])
local ttl = math.ceil(tonumber(ARGV[3]) / 1000) + 60
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. since)
redis.call('EXPIRE', KEYS[1], ttl)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. since)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {redis.call('ZCOUNT', KEYS[1], since, ARGV[2]), redis.call('ZCOUNT', KEYS[2], since, ARGV[2])}
"""

# KEYS[1] closed index; ARGV: cases prefix, closed before, max. Erases the LINE user ID of cases
# closed before then (the pseudonym stays, for history and blocks). Returns how many.
_FORGET = """
local numbers = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, n in ipairs(numbers) do
  redis.call('HDEL', ARGV[1] .. 'case:' .. n, 'child')
  redis.call('ZREM', KEYS[1], n)
end
return #numbers
"""

# KEYS[1] seen marker, KEYS[2] held list, KEYS[3] case hash; ARGV: ttl, is text ('1'), text.
_HOLD_BACK = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[2] == '1' then redis.call('RPUSH', KEYS[2], ARGV[3]) else redis.call('HINCRBY', KEYS[3], 'held_stickers', 1) end
return 1
"""

# KEYS[1] audit stream, KEYS[2] seen marker; ARGV: min id (retention), marker ttl, then field, value
# pairs. Appends a record once per id, dropping records older than the retention period.
_AUDIT = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local fields = {}
for i = 3, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', unpack(fields))
return 1
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
        self._record = redis.register_script(_RECORD)
        self._open_or_get = redis.register_script(_OPEN_OR_GET)
        self._close = redis.register_script(_CLOSE)
        self._set_thread = redis.register_script(_SET_THREAD)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._retry = redis.register_script(_RETRY)
        self._renew = redis.register_script(_RENEW)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew_lane = redis.register_script(_RENEW_LANE)
        self._queue = redis.register_script(_QUEUE)
        self._assign = redis.register_script(_ASSIGN)
        self._fire = redis.register_script(_FIRE)
        self._arm = redis.register_script(_ARM)
        self._recent = redis.register_script(_RECENT)
        self._audit = redis.register_script(_AUDIT)
        self._hold_back = redis.register_script(_HOLD_BACK)
        self._forget = redis.register_script(_FORGET)
        self._record_decision = redis.register_script(_RECORD_DECISION)
        self._count_blocked = redis.register_script(_COUNT_BLOCKED)

    async def prepare(self) -> None:
        """Load the pseudonym key, making it on first use. Stored in Redis, so it stays the
        same when secrets are rotated and every worker derives the same names."""
        if self._child_key_secret is None:
            await self.redis.set(self.keys.pseudonym_key, secrets.token_hex(32), nx=True)
            stored = await self.redis.get(self.keys.pseudonym_key)
            if stored is None:
                raise RuntimeError("the pseudonym key vanished from Redis")
            self._child_key_secret = as_text(stored).encode()

    def child_key(self, child_id: str) -> str:
        """A stable pseudonym for a LINE user ID, so key names never carry the ID itself."""
        if self._child_key_secret is None:
            raise RuntimeError("Store.prepare() must run before child keys are derived")
        return hmac.new(self._child_key_secret, child_id.encode(), hashlib.sha256).hexdigest()[:32]

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

    async def drop_routed_entry(self, entry_id: str) -> None:
        """Settle a routed entry: its kept effects are replaced by a bare "applied" mark, and
        the entry is acknowledged and deleted, so its content leaves Redis. (One round trip;
        the mark goes first, so a crash in between leaves nothing of the child's behind.)"""
        await self.redis.set(self.keys.applied(entry_id), "1", xx=True, keepttl=True)
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.keys.inbound, "router", entry_id)
        pipe.xdel(self.keys.inbound, entry_id)
        await pipe.execute()

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

    # --- cases ------------------------------------------------------------------------

    async def open_or_get_case(
        self, child_id: str, now: float, *, arrived_closed: bool = False, entry_id: str = ""
    ) -> tuple[int, bool]:
        """The child's open case, opening one if none is open. Returns (number, created).

        entry_id, the inbound entry asking, is kept on a new case, so that a replay of the
        same entry can tell it opened the case (Case.opened_by).
        """
        number, created, _ = await self._open(child_id, now, arrived_closed, entry_id, unless_blocked=False)
        return number, created

    async def open_case_unless_blocked(
        self, child_id: str, now: float, *, arrived_closed: bool = False, entry_id: str = ""
    ) -> tuple[int, bool, Block | None]:
        """As open_or_get_case, in the same round trip, unless the child is blocked: then
        (0, False, the block) and nothing is opened."""
        return await self._open(child_id, now, arrived_closed, entry_id, unless_blocked=True)

    async def _open(
        self, child_id: str, now: float, arrived_closed: bool, entry_id: str, *, unless_blocked: bool
    ) -> tuple[int, bool, Block | None]:
        keys = [self.keys.case_seq, self.keys.open_by_child, self.keys.unanswered]
        reply = await self._open_or_get(
            keys=keys + ([self.keys.blocked] if unless_blocked else []),
            args=[
                self.keys.cases_prefix,
                self.child_key(child_id),
                child_id,
                f"{now:.3f}",
                "1" if arrived_closed else "0",
                entry_id,
            ],
        )
        block = _block_from(as_text(reply[2])) if len(reply) > 2 else None
        return int(reply[0]), bool(reply[1]), block

    async def queue_of(self, number: int) -> Queue:
        """How many cases are open, and this case's place among the unanswered ones."""
        open_cases, place = await self._queue(keys=[self.keys.open_by_child, self.keys.unanswered], args=[number])
        return Queue(open_cases=int(open_cases), place=int(place))

    async def open_cases(self) -> list[Case]:
        """Every open case, by number (one round trip for the list, one for the cases)."""
        numbers = sorted(int(n) for n in await self.redis.hvals(self.keys.open_by_child))
        return await self.get_cases(numbers)

    async def get_cases(self, numbers: Sequence[int]) -> list[Case]:
        pipe = self.redis.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self.keys.case(number))
        return [case for raw in await pipe.execute() if (case := _case_from(raw)) is not None]

    async def assign_counsellor(self, number: int, user: str, now: float) -> bool:
        """Record the first counsellor to answer; later calls change nothing."""
        return bool(
            await self._assign(keys=[self.keys.case(number), self.keys.unanswered], args=[user, f"{now:.3f}", number])
        )

    async def note_counsellor_reply(self, number: int, now: float) -> None:
        await self.redis.hset(self.keys.case(number), "last_counsellor_at", f"{now:.3f}")

    async def note_child_message(self, number: int, now: float) -> None:
        await self.redis.hset(self.keys.case(number), "last_child_at", f"{now:.3f}")

    async def set_hold(self, number: int, hold: bool) -> None:
        await self.redis.hset(self.keys.case(number), "hold", "1" if hold else "0")

    async def mark_busy_notified(self, number: int) -> None:
        await self.redis.hset(self.keys.case(number), "busy_notified", "1")

    async def mark_arrived_closed(self, number: int) -> None:
        await self.redis.hset(self.keys.case(number), "arrived_closed", "1")

    async def closed_notice_of(self, child_id: str) -> str | None:
        """The closed period for which the child last got the out-of-hours reply."""
        value = await self.redis.get(self.keys.closed_notice(self.child_key(child_id)))
        return as_text(value) if value is not None else None

    async def mark_closed_notice(self, child_id: str, period: str, until: float) -> None:
        ttl = max(60, int(until - time.time()) + 86400)
        await self.redis.set(self.keys.closed_notice(self.child_key(child_id)), period, ex=ttl)

    async def note_closed_arrival(self, number: int, at: float) -> None:
        await self.redis.zadd(self.keys.closed_arrivals, {str(number): at}, nx=True)

    async def closed_arrivals(self) -> list[tuple[int, float]]:
        rows: Any = await self.redis.zrange(self.keys.closed_arrivals, 0, -1, withscores=True)
        return [(int(as_text(member)), float(score)) for member, score in rows]

    async def clear_closed_arrivals(self, numbers: Sequence[int]) -> None:
        if numbers:
            await self.redis.zrem(self.keys.closed_arrivals, *[str(n) for n in numbers])

    # --- timers ------------------------------------------------------------------------

    async def schedule_timer(self, kind: str, arg: str, at: float) -> None:
        """Fire (kind, arg) at the given time. Scheduling the same timer again, before or after
        it fired, changes nothing."""
        member = f"{kind}|{arg}"
        await self._arm(keys=[self.keys.timers, self.keys.fired_prefix + member], args=[member, int(at * 1000)])

    async def fire_due_timers(self, *, limit: int = 100) -> tuple[int, float | None]:
        """Move due timers into the inbound stream. Returns (how many, seconds until the next)."""
        fired, next_ms = await self._fire(
            keys=[self.keys.timers, self.keys.inbound],
            args=[now_ms(), limit, self.keys.fired_prefix, FIRED_MARKER_TTL_SECONDS],
        )
        next_ms = float(next_ms)
        return int(fired), (max(0.0, (next_ms - now_ms()) / 1000) if next_ms >= 0 else None)

    async def open_case_of(self, child_id: str) -> int | None:
        number = await self.redis.hget(self.keys.open_by_child, self.child_key(child_id))
        return int(number) if number is not None else None

    async def get_case(self, number: int) -> Case | None:
        return _case_from(await self.redis.hgetall(self.keys.case(number)))

    async def case_by_thread(self, thread_ts: str) -> int | None:
        number = await self.redis.hget(self.keys.by_thread, thread_ts)
        return int(number) if number is not None else None

    async def close_case(self, number: int, reason: str, now: float, *, by: str | None = None) -> bool:
        """Close an open case. Returns False if it was not open (nothing changes then)."""
        return bool(
            await self._close(
                keys=[self.keys.case(number), self.keys.open_by_child, self.keys.unanswered, self.keys.closed_index],
                args=[number, reason, f"{now:.3f}", by or ""],
            )
        )

    async def erase_closed_children_ids(self, *, closed_before: float, limit: int = 500) -> int:
        """Erase the LINE user ID from cases closed before the given time; returns how many."""
        return int(
            await self._forget(keys=[self.keys.closed_index], args=[self.keys.cases_prefix, closed_before, limit])
        )

    async def mark_blocked_risk(self, number: int) -> None:
        await self.redis.hset(self.keys.case(number), "blocked_risk", "1")

    async def mark_urgent(self, number: int) -> None:
        await self.redis.hset(self.keys.case(number), "urgent", "1")

    # --- blocks -----------------------------------------------------------------------

    async def _child_key_of_case(self, number: int) -> str | None:
        """A case's child pseudonym: it outlives the LINE user ID (see erase_closed_children_ids)."""
        key = await self.redis.hget(self.keys.case(number), "child_key")
        return as_text(key) if key is not None else None

    async def block_child(self, number: int, *, by: str, reason: str, at: float) -> None:
        """Block the child of a case (keyed by pseudonym); the case shows it and counts afresh."""
        child_key = await self._child_key_of_case(number)
        if child_key is None:
            return
        record = json.dumps({"case": number, "by": by, "at": at, "reason": reason}, ensure_ascii=True)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.blocked, child_key, record)
        pipe.hset(self.keys.case(number), mapping={"blocked": "1", "blocked_count": "0", "blocked_risk": "0"})
        await pipe.execute()

    async def unblock_child(self, number: int) -> None:
        """Lift the block of a case's child; the case it was made from (and the one named) stop showing it."""
        child_key = await self._child_key_of_case(number)
        if child_key is None:
            return
        block = await self._block_by_key(child_key)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.blocked, child_key)
        for case in {number, *([block.case] if block else [])}:
            pipe.hset(self.keys.case(case), "blocked", "0")
        await pipe.execute()

    async def block_of(self, child_id: str) -> Block | None:
        """The block of the child writing now, if any."""
        return await self._block_by_key(self.child_key(child_id))

    async def block_of_case(self, number: int) -> Block | None:
        """The block of a case's child, if any (works after the LINE user ID was forgotten)."""
        child_key = await self._child_key_of_case(number)
        return await self._block_by_key(child_key) if child_key is not None else None

    async def open_case_of_case(self, number: int) -> int | None:
        """The open case of the same child as case `number`, if any."""
        child_key = await self._child_key_of_case(number)
        if child_key is None:
            return None
        open_number = await self.redis.hget(self.keys.open_by_child, child_key)
        return int(open_number) if open_number is not None else None

    async def _block_by_key(self, child_key: str) -> Block | None:
        raw = await self.redis.hget(self.keys.blocked, child_key)
        return _block_from(as_text(raw)) if raw is not None else None

    async def count_blocked_message(self, number: int, *, marker: str) -> None:
        """Count one message of a blocked child on the case, once per marker."""
        await self._count_blocked(
            keys=[self.keys.held_seen(f"blocked:{marker}"), self.keys.case(number)], args=[DEDUP_TTL_SECONDS]
        )

    # --- floods -----------------------------------------------------------------------

    async def note_recent(self, number: int, entry_id: str, *, sticker: bool, at: float, window_s: int) -> Recent:
        """Note a child's message for the flood window and count the window up to it."""
        messages, stickers = await self._recent(
            keys=[self.keys.recent(number, "all"), self.keys.recent(number, "stickers")],
            args=[entry_id, int(at * 1000), window_s * 1000, "1" if sticker else "0"],
        )
        return Recent(messages=int(messages), stickers=int(stickers))

    async def start_flood(self, number: int, until: float) -> None:
        await self.redis.hset(self.keys.case(number), "flood_until", f"{until:.3f}")

    async def hold_back(self, number: int, text: str | None, *, marker: str) -> None:
        """Keep a held message, once per marker (a replay does not keep it twice), in one step."""
        await self._hold_back(
            keys=[self.keys.held_seen(marker), self.keys.held(number), self.keys.case(number)],
            args=[DEDUP_TTL_SECONDS, "" if text is None else "1", text or ""],
        )

    async def held_of(self, number: int) -> tuple[list[str], int]:
        """What a flood hold kept back: the texts in order, and how many stickers."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(self.keys.held(number), 0, -1)
        pipe.hget(self.keys.case(number), "held_stickers")
        texts, stickers = await pipe.execute()
        return [as_text(t) for t in texts], int(stickers or 0)

    async def release_flood(self, number: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.case(number), "flood_until", "held_stickers")
        pipe.delete(self.keys.held(number))
        await pipe.execute()

    # --- audit ------------------------------------------------------------------------

    async def add_audit(self, record_id: str, record: dict[str, str], *, at: float, retention_days: int) -> bool:
        """Append an audit record once per record_id; records past retention are dropped."""
        min_id = int((at - retention_days * 86400) * 1000)
        args: list[str | int] = [f"{max(0, min_id)}-0", retention_days * 86400]
        for name, value in {"at": f"{at:.3f}", **record}.items():
            args += [name, value]
        return bool(await self._audit(keys=[self.keys.audit, self.keys.audit_seen(record_id)], args=args))

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

    async def trim_audit(self, *, retention_days: int) -> int:
        min_id = int((time.time() - retention_days * 86400) * 1000)
        return int(await self.redis.xtrim(self.keys.audit, minid=f"{max(0, min_id)}-0"))

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

    async def change_member(self, user: str, *, joined: bool) -> None:
        """Someone joined or left the case channel (between two full refreshes)."""
        if joined:
            await self.redis.sadd(self.keys.roster_members, user)
        else:
            await self.redis.srem(self.keys.roster_members, user)

    async def set_thread(self, number: int, thread_ts: str) -> bool:
        """Record the case's Slack thread once; a second call changes nothing."""
        return bool(
            await self._set_thread(keys=[self.keys.case(number), self.keys.by_thread], args=[number, thread_ts])
        )

    # --- delivery lanes ---------------------------------------------------------------

    async def enqueue(self, items: Iterable[tuple[str, str, dict[str, Any]]], *, marker: str | None) -> bool:
        """Append (lane, item id, payload) deliveries atomically, at most once per marker.

        Returns False when the marker was applied before (nothing is appended then).
        """
        now = now_ms()
        args: list[str | int] = [self.keys.lanes_prefix, now, DEDUP_TTL_SECONDS, self.keys.wake_channel]
        for lane, item_id, payload in items:
            args += [lane, encode_item(item_id, payload, now)]
        keys = [self.keys.due, self.keys.applied(marker) if marker else ""]
        return bool(await self._enqueue(keys=keys, args=args))

    async def record_decision(
        self,
        entry_id: str,
        items: Iterable[tuple[str, str, dict[str, Any]]],
        effects: list[dict[str, Any]],
    ) -> list[dict[str, Any]] | None:
        """Enqueue an inbound entry's deliveries and keep its effects, atomically, once.

        Returns None on the first run (apply `effects`). On a replay returns the effects the
        first run kept ([] when they were all applied): apply those, not a new decision, which
        would see the state half changed."""
        now = now_ms()
        args: list[str | int] = [
            self.keys.lanes_prefix,
            now,
            DEDUP_TTL_SECONDS,
            self.keys.wake_channel,
            json.dumps(effects, ensure_ascii=True),
        ]
        for lane, item_id, payload in items:
            args += [lane, encode_item(item_id, payload, now)]
        kept = await self._record_decision(keys=[self.keys.due, self.keys.applied(entry_id)], args=args)
        if kept is None:
            return None
        text = as_text(kept)
        loaded: list[dict[str, Any]] = [] if text == "1" else json.loads(text)
        return loaded

    async def claim(self, *, token: str, lease_ms: int, max_lanes: int) -> list[Claim]:
        raw = await self._claim(
            keys=[self.keys.due, self.keys.attempts],
            args=[self.keys.lanes_prefix, now_ms(), lease_ms, token, max_lanes],
        )
        claims = []
        for i in range(0, len(raw), 3):
            item_id, payload, enqueued_ms = decode_item(as_text(raw[i + 1]))
            claims.append(
                Claim(
                    lane=as_text(raw[i]),
                    item_id=item_id,
                    payload=payload,
                    attempts=int(raw[i + 2]),
                    enqueued_ms=enqueued_ms,
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

    async def lane_length(self, lane: str) -> int:
        return int(await self.redis.llen(self.keys.lane(lane)))


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
        opened_by=fields.get("opened_by") or None,
        earlier=tuple(int(n) for n in fields.get("earlier", "").split(",") if n),
        closed_by=fields.get("closed_by") or None,
        urgent=fields.get("urgent") == "1",
        blocked=fields.get("blocked") == "1",
        blocked_count=int(fields.get("blocked_count") or 0),
        flood_until=moment("flood_until"),
        blocked_risk=fields.get("blocked_risk") == "1",
    )


def _block_from(raw: str) -> Block:
    record = json.loads(raw)
    return Block(case=int(record["case"]), by=str(record["by"]), at=float(record["at"]), reason=str(record["reason"]))


def as_text(value: bytes | str) -> str:
    """Redis replies as text, whether the client decodes them or not."""
    return value.decode() if isinstance(value, bytes) else value
