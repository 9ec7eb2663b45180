"""One atomic write: checks first, then every change, or nothing at all.

The router commits each decision with one call of the script below: the state changes the core
decided, the deliveries it enqueues and the acknowledgement of the inbound entry, together. The
script knows no rule of the bridge. It runs a list of generic operations (set a hash field,
append to a list, enqueue a delivery...) after checking that what the decision was made from
is unchanged (compare-and-set on a case's version, a lookup still unset) and that the entry
is still unacknowledged. If a check fails nothing is written, and the router decides again from
fresh reads.

Every key is passed in KEYS (operations name them by index), so the script also runs on a
Redis Cluster once the keys of one commit share a slot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.adapters.redis.codec import Claim, as_text
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.lanes import LANE_FUNCTIONS, claims_from

# ARGV[1] the time (ms) enqueued lanes become due, ARGV[2] the wake-up channel, ARGV[3] the
# operations as one JSON array of strings (one argument to encode and parse, however many
# operations), each as: name, argument count, arguments. A key argument is an index into KEYS.
# A script that fails half-way keeps what it wrote, so every operation is checked before the
# first write.
# Hand-off (ARGV[4] a lease token, '' for none; ARGV[5] lease ms; ARGV[6] at most this many
# lanes; ARGV[7] the lanes' key prefix; ARGV[8..10] the KEYS indices of the due set, the attempts
# and the lane threads): lanes this commit made due are leased in the same step, the nth taken
# (from 0) for the token followed by '.n' (so no two claims ever share a lease token), and
# returned, so the committing worker's idle deliverers start on them without a claim of
# their own. Deliverers elsewhere are woken only for lanes left over.
# Returns 'gone' or 'conflict' (nothing written), or {'done', claims} (see LANE_FUNCTIONS).
_COMMIT = (
    LANE_FUNCTIONS
    + """
local flat = cjson.decode(ARGV[3])
local ops = {}
local i = 1
while i <= #flat do
  local n = tonumber(flat[i + 1])
  local args = {}
  for j = 1, n do args[j] = flat[i + 1 + j] end
  table.insert(ops, {flat[i], args})
  i = i + 2 + n
end
local writes = {hset=1, hdel=1, hdelif=1, hincrby=1, set=1, setex=1, del=1, zadd=1, zaddnx=1, zrem=1,
  zremrangebyscore=1, expire=1, rpush=1, lrem=1, ltrim=1, sadd=1, srem=1, xadd=1, xappend=1, xtrim=1,
  xdel=1, arm=1, enqueue=1, ack=1}
for _, op in ipairs(ops) do
  local name, a = op[1], op[2]
  if name == 'present' then
    if #redis.call('XRANGE', KEYS[tonumber(a[1])], a[2], a[2]) == 0 then return 'gone' end
  elseif name == 'hfield' then
    if (redis.call('HGET', KEYS[tonumber(a[1])], a[2]) or '') ~= a[3] then return 'conflict' end
  elseif name == 'value' then
    if (redis.call('GET', KEYS[tonumber(a[1])]) or '') ~= a[2] then return 'conflict' end
  elseif name == 'xlast' then
    local last = redis.call('XREVRANGE', KEYS[tonumber(a[1])], '+', '-', 'COUNT', 1)
    if ((last[1] or {})[1] or '') ~= a[2] then return 'conflict' end
  elseif not writes[name] then
    return redis.error_reply('unknown operation ' .. tostring(name))
  end
end
local fresh = {}
for _, op in ipairs(ops) do
  local name, a = op[1], op[2]
  local key = KEYS[tonumber(a[1])]
  if name == 'hset' then redis.call('HSET', key, unpack(a, 2))
  elseif name == 'hdel' then redis.call('HDEL', key, unpack(a, 2))
  elseif name == 'hdelif' then
    if redis.call('HGET', key, a[2]) == a[3] then redis.call('HDEL', key, a[2]) end
  elseif name == 'hincrby' then redis.call('HINCRBY', key, a[2], a[3])
  elseif name == 'set' then redis.call('SET', key, a[2])
  elseif name == 'setex' then redis.call('SET', key, a[2], 'EX', a[3])
  elseif name == 'del' then redis.call('DEL', key)
  elseif name == 'zadd' then redis.call('ZADD', key, a[2], a[3])
  elseif name == 'zaddnx' then redis.call('ZADD', key, 'NX', a[2], a[3])
  elseif name == 'zrem' then redis.call('ZREM', key, unpack(a, 2))
  elseif name == 'zremrangebyscore' then redis.call('ZREMRANGEBYSCORE', key, a[2], a[3])
  elseif name == 'expire' then redis.call('EXPIRE', key, a[2])
  elseif name == 'rpush' then redis.call('RPUSH', key, unpack(a, 2))
  elseif name == 'lrem' then redis.call('LREM', key, 0, a[2])
  elseif name == 'ltrim' then redis.call('LTRIM', key, a[2], a[3])
  elseif name == 'sadd' then redis.call('SADD', key, unpack(a, 2))
  elseif name == 'srem' then redis.call('SREM', key, unpack(a, 2))
  elseif name == 'xadd' then redis.call('XADD', key, 'MINID', '~', a[2], '*', unpack(a, 3))
  elseif name == 'xappend' then redis.call('XADD', key, '*', unpack(a, 2))
  elseif name == 'xtrim' then redis.call('XTRIM', key, 'MINID', a[2])
  elseif name == 'xdel' then redis.call('XDEL', key, unpack(a, 2))
  elseif name == 'arm' then
    -- a timer fires once: one that fired already is not armed again, an armed one keeps its time
    if redis.call('EXISTS', KEYS[tonumber(a[2])]) == 0 then redis.call('ZADD', key, 'NX', a[3], a[4]) end
  elseif name == 'enqueue' then
    redis.call('RPUSH', key, a[4])
    -- a lane already due or leased has someone for it: wake deliverers only for a new one
    if redis.call('ZADD', KEYS[tonumber(a[2])], 'NX', ARGV[1], a[3]) == 1 then table.insert(fresh, a[3]) end
  elseif name == 'ack' then
    redis.call('XACK', key, a[2], a[3])
    redis.call('XDEL', key, a[3])
  end
end
local claims = {}
if ARGV[4] ~= '' then
  local now, lease_ms, max = tonumber(ARGV[1]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local due, attempts, threads = KEYS[tonumber(ARGV[8])], KEYS[tonumber(ARGV[9])], KEYS[tonumber(ARGV[10])]
  for _, lane in ipairs(fresh) do
    if #claims >= max * CLAIM_FIELDS then break end
    -- each lane its own token (the hand-off's, then '.' and the lane's place among those taken)
    take_lane(due, attempts, threads, ARGV[7], now, lease_ms, ARGV[4] .. '.' .. (#claims / CLAIM_FIELDS), lane, claims)
  end
end
if #claims < #fresh * CLAIM_FIELDS then redis.call('PUBLISH', ARGV[2], '1') end
return {'done', claims}
"""
)


class Committed(StrEnum):
    DONE = "done"  # every change is written
    GONE = "gone"  # the entry was committed before (by another router): nothing written
    CONFLICT = "conflict"  # what the decision was made from changed: nothing written; decide again


class Ops:
    """The operations of one commit, in order. Checks may come anywhere: all run first."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.args: list[str] = []
        self.count = 0

    def _key(self, key: str) -> str:
        if key not in self._index:
            self.keys.append(key)
            self._index[key] = len(self.keys)
        return str(self._index[key])

    def _add(self, name: str, key: str, *values: object, keys: tuple[str, ...] = ()) -> None:
        args = [self._key(key), *(self._key(k) for k in keys), *(_valid(str(v)) for v in values)]
        self.args += [name, str(len(args)), *args]
        self.count += 1

    def key_index(self, key: str) -> str:
        """The index of a key in KEYS (added if new), for a script argument that names a key."""
        return self._key(key)

    def encoded(self) -> str:
        return json.dumps(self.args, ensure_ascii=False, separators=(",", ":"))

    # checks
    def present(self, stream: str, entry_id: str) -> None:
        """The inbound entry is still there (no other router committed it)."""
        self._add("present", stream, entry_id)

    def field_is(self, key: str, field: str, expected: str | None) -> None:
        """A hash field still reads as loaded (None: still unset)."""
        self._add("hfield", key, field, expected or "")

    def value_is(self, key: str, expected: str | None) -> None:
        self._add("value", key, expected or "")

    def last_entry_is(self, stream: str, expected: str | None) -> None:
        """A stream's last entry is still this one (None: the stream is still empty)."""
        self._add("xlast", stream, expected or "")

    # writes
    def hset(self, key: str, mapping: dict[str, str]) -> None:
        if mapping:
            self._add("hset", key, *(part for pair in mapping.items() for part in pair))

    def hdel(self, key: str, *fields: str) -> None:
        if fields:
            self._add("hdel", key, *fields)

    def hdel_if(self, key: str, field: str, value: str) -> None:
        """Delete a hash field if it still holds this value."""
        self._add("hdelif", key, field, value)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self._add("hincrby", key, field, amount)

    def set(self, key: str, value: str, *, ex: int | None = None) -> None:
        if ex is None:
            self._add("set", key, value)
        else:
            self._add("setex", key, value, ex)

    def delete(self, key: str) -> None:
        self._add("del", key)

    def zadd(self, key: str, score: float, member: str, *, nx: bool = False) -> None:
        self._add("zaddnx" if nx else "zadd", key, _number(score), member)

    def zrem(self, key: str, *members: str) -> None:
        if members:
            self._add("zrem", key, *members)

    def zremrangebyscore(self, key: str, low: str, high: str) -> None:
        self._add("zremrangebyscore", key, low, high)

    def expire(self, key: str, seconds: int) -> None:
        self._add("expire", key, seconds)

    def rpush(self, key: str, *values: str) -> None:
        if values:
            self._add("rpush", key, *values)

    def lrem(self, key: str, value: str) -> None:
        """Remove every occurrence of a value from a list."""
        self._add("lrem", key, value)

    def ltrim(self, key: str, start: int, stop: int) -> None:
        self._add("ltrim", key, start, stop)

    def sadd(self, key: str, *members: str) -> None:
        if members:
            self._add("sadd", key, *members)

    def srem(self, key: str, *members: str) -> None:
        if members:
            self._add("srem", key, *members)

    def xadd(self, key: str, fields: dict[str, str], *, min_id: str) -> None:
        """Append to a stream, dropping entries older than min_id."""
        self._add("xadd", key, min_id, *(part for pair in fields.items() for part in pair))

    def xappend(self, key: str, fields: dict[str, str]) -> None:
        """Append to a stream, trimming nothing."""
        self._add("xappend", key, *(part for pair in fields.items() for part in pair))

    def xtrim(self, key: str, *, min_id: str) -> None:
        """Drop every entry older than min_id (exactly, not roughly)."""
        self._add("xtrim", key, min_id)

    def xdel(self, key: str, *entry_ids: str) -> None:
        """Delete these entries of a stream."""
        if entry_ids:
            self._add("xdel", key, *entry_ids)

    def arm(self, timers: str, fired_marker: str, due_ms: int, member: str) -> None:
        """Arm a timer once: not again after it fired; an armed one keeps its time."""
        self._add("arm", timers, due_ms, member, keys=(fired_marker,))

    def enqueue(self, lane_list: str, due: str, lane: str, item: str) -> None:
        """Append a delivery to its lane; the lane becomes due now unless it is due already."""
        self._add("enqueue", lane_list, lane, item, keys=(due,))

    def ack(self, stream: str, group: str, entry_id: str) -> None:
        """Acknowledge and delete the inbound entry: its content leaves Redis."""
        self._add("ack", stream, group, entry_id)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid(value: str) -> str:
    """Text Redis can keep: a lone UTF-16 surrogate (no character on its own, which a client
    may still send) becomes U+FFFD. Text that must survive exactly is JSON-escaped first."""
    return value if value.isascii() or not _SURROGATE.search(value) else _SURROGATE.sub("\ufffd", value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class HandOff:
    """Lease the lanes a commit makes due, up to max_lanes, for token (see _COMMIT)."""

    token: str
    lease_ms: int
    max_lanes: int
    lanes_prefix: str
    due: str
    attempts: str
    lane_threads: str


class Committer:
    """Runs commits against one Redis."""

    def __init__(self, redis: RedisClient, *, wake_channel: str) -> None:
        self._script = redis.register_script(_COMMIT)
        self._wake_channel = wake_channel

    async def commit(self, ops: Ops, *, now_ms: int, hand_off: HandOff | None = None) -> tuple[Committed, list[Claim]]:
        """Run the commit; returns its result and the lanes leased for the hand-off (if any)."""
        args: list[str | int] = [now_ms, self._wake_channel, ops.encoded()]
        if hand_off is not None and hand_off.max_lanes > 0:
            args += [hand_off.token, hand_off.lease_ms, hand_off.max_lanes, hand_off.lanes_prefix]
            args += [ops.key_index(key) for key in (hand_off.due, hand_off.attempts, hand_off.lane_threads)]
        else:
            args.append("")
        reply: Any = await self._script(keys=ops.keys, args=args)
        if isinstance(reply, list):
            return Committed(as_text(reply[0])), claims_from(reply[1])
        return Committed(as_text(reply)), []
