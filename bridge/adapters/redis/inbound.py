"""The inbound stream: recording verified events once, the router's lease, due timers joining the
stream, and entries set aside for an operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.adapters.redis.codec import now_ms
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.heartbeat import ALIVE_MS
from bridge.adapters.redis.keys import Keys, inbound_streams
from bridge.adapters.redis.partitions import LUA_PARTITION_OF, partition_of

DEDUP_TTL_SECONDS = 7 * 24 * 3600  # LINE and Slack redeliver within hours; a week is ample.
FIRED_MARKER_TTL_SECONDS = 7 * 24 * 3600  # longer than any backlog the router could have


# KEYS[1..n] seen markers, KEYS[n+1..2n] the streams they go to (their partitions'); ARGV[1]
# ttl, then per event: source, body. One round trip records a whole webhook body; duplicates are
# skipped.
_RECORD = """
local n = #KEYS / 2
local recorded = 0
for i = 1, n do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[n + i], '*', 'source', ARGV[i * 2], 'body', ARGV[i * 2 + 1])
    recorded = recorded + 1
  end
end
return recorded
"""

# KEYS[1] seen marker, KEYS[2] by-thread; ARGV: ttl, source, body, partition count, cases prefix,
# how many fields of the thread to look for in by-thread (n, maybe 0), those n fields in order, a
# case number ('' for none), then the stream of each partition in order (named by keys.py alone).
# Records a Slack event in the partition of the case it is about: the case of the first field
# found if the thread is one, else the case named; a case's
# partition is its child's (partitions.py). Anything else goes to partition 0. Returns 1 if
# recorded, 0 if seen before.
_RECORD_FOR_CASE = (
    LUA_PARTITION_OF
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local count = tonumber(ARGV[4])
local fields = tonumber(ARGV[6])
local partition = 0
if count > 1 then
  local number = false
  for i = 1, fields do
    number = number or redis.call('HGET', KEYS[2], ARGV[6 + i])
  end
  number = number or ARGV[7 + fields]
  if number ~= '' then
    partition = partition_of(redis.call('HGET', ARGV[5] .. 'case:' .. number, 'child'), count)
  end
end
redis.call('XADD', ARGV[8 + fields + partition], '*', 'source', ARGV[2], 'body', ARGV[3])
return 1
"""
)

# KEYS[1] router lease, KEYS[2] heartbeats; ARGV token, ms, alive ms, now ms. Takes the lease if
# free or its holder's heartbeat is older than alive ms, or extends it if ours.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then
  local beat = redis.call('ZSCORE', KEYS[2], holder)
  if not beat or tonumber(beat) >= tonumber(ARGV[4]) - tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] router lease; ARGV token, ms. Extends the lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] timers, KEYS[2] inbound stream; ARGV: now ms, max, fired-marker prefix, marker ttl.
# Moves due timers into the stream, where the router decides them in order with everything
# else, and marks each as fired so a late event cannot arm it again. Returns {fired, next due
# ms, the due times (ms) of those fired}.
_FIRE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local due_ms = {}
for i = 1, #due, 2 do
  local member = due[i]
  redis.call('ZREM', KEYS[1], member)
  redis.call('SET', ARGV[3] .. member, '1', 'EX', ARGV[4])
  redis.call('XADD', KEYS[2], '*', 'source', 'timer', 'body', member)
  table.insert(due_ms, due[i + 1])
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due_ms, first[2] or -1, due_ms}
"""


class InboundStore:
    """The inbound stream's atomic steps (a part of Store)."""

    redis: RedisClient
    keys: Keys
    partitions: int  # how many partitions the inbound stream has (partitions.py)

    def _register_inbound(self) -> None:
        self._record = self.redis.register_script(_RECORD)
        self._record_for_case = self.redis.register_script(_RECORD_FOR_CASE)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._fire = self.redis.register_script(_FIRE)

    async def record_events(
        self, source: str, events: Sequence[tuple[str, str]], *, children: Sequence[str | None] | None = None
    ) -> int:
        """Append (dedup_id, body) events to the inbound stream, skipping ids seen before; each
        event goes to the partition of its child (children: the LINE user ID of each, or None;
        without it, or with one partition, everything goes to partition 0).

        Returns how many were new. Atomic: an event is either recorded and marked, or neither.
        """
        if not events:
            return 0
        keys = [self.keys.seen(source, event_id) for event_id, _ in events]
        if children is None or self.partitions == 1:
            keys += [self.keys.inbound] * len(events)
        else:
            keys += [self.keys.inbound_of(partition_of(child or "", self.partitions)) for child in children]
        args: list[str | int] = [DEDUP_TTL_SECONDS]
        for _, body in events:
            args += [source, body]
        return int(await self._record(keys=keys, args=args))

    async def record_for_case(
        self, source: str, event_id: str, body: str, *, thread_fields: Sequence[str] = (), case: str | None = None
    ) -> int:
        """Record one event about a case in the case's partition: the case of the first of these
        thread fields found in by-thread (keys.thread_fields, in order), else the case of this
        number. Returns 1 if new."""
        args: list[str | int] = [
            DEDUP_TTL_SECONDS,
            source,
            body,
            self.partitions,
            self.keys.cases_prefix,
            len(thread_fields),
            *thread_fields,
            case if case is not None and case.isdigit() and len(case) <= 12 else "",
            *inbound_streams(self.keys, self.partitions),
        ]
        return int(await self._record_for_case(keys=[self.keys.seen(source, event_id), self.keys.by_thread], args=args))

    async def ensure_router_group(self) -> None:
        for stream in inbound_streams(self.keys, self.partitions):
            try:
                await self.redis.xgroup_create(stream, "router", id="0", mkstream=True)
            except Exception as exc:  # BUSYGROUP: it exists already
                if "BUSYGROUP" not in str(exc):
                    raise

    async def set_aside(self, entry_id: str, fields: dict[Any, Any], *, why: str = "", partition: int = 0) -> None:
        """Move an entry the router could not decide to the set-aside stream for an operator,
        with why (what an operator may read: no content)."""
        stream = self.keys.inbound_of(partition)
        pipe = self.redis.pipeline(transaction=True)
        kept = {**fields, "entry": entry_id, "why": why}
        if partition:
            kept["partition"] = str(partition)
        pipe.xadd(self.keys.set_aside, kept, maxlen=10_000, approximate=True)
        pipe.xack(stream, "router", entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()

    async def acquire_router_lease(self, token: str, ms: int, *, partition: int = 0) -> bool:
        """Take a partition's router lease if free, or held by a worker whose heartbeat is older
        than ALIVE_MS (it died: heartbeat.py); or extend it if this token already holds it. A
        holder that never beat keeps the lease until it runs out."""
        keys = [self.keys.router_lease_of(partition), self.keys.router_workers]
        return bool(await self._acquire(keys=keys, args=[token, ms, ALIVE_MS, now_ms()]))

    async def renew_router_lease(self, token: str, ms: int, *, partition: int = 0) -> bool:
        return bool(await self._renew(keys=[self.keys.router_lease_of(partition)], args=[token, ms]))

    async def release_router_lease(self, token: str, *, partition: int = 0) -> None:
        await self._renew(keys=[self.keys.router_lease_of(partition)], args=[token, 1])

    async def routers_alive(self) -> int:
        """How many workers' heartbeats are alive (the routers that share the partitions)."""
        return int(await self.redis.zcount(self.keys.router_workers, now_ms() - ALIVE_MS, "+inf"))

    async def fire_due_timers(self, *, limit: int = 100) -> tuple[int, float | None, tuple[float, ...]]:
        """Move due timers into the inbound stream. Returns (how many, seconds until the next,
        how late each one moved: seconds after its due time)."""
        now = now_ms()
        fired, next_ms, due_ms = await self._fire(
            keys=[self.keys.timers, self.keys.inbound],
            args=[now, limit, self.keys.fired_prefix, FIRED_MARKER_TTL_SECONDS],
        )
        next_ms = float(next_ms)
        lateness = tuple(max(0.0, (now - float(due)) / 1000) for due in due_ms or ())
        return int(fired), (max(0.0, (next_ms - now_ms()) / 1000) if next_ms >= 0 else None), lateness
