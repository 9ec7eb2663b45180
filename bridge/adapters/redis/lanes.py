"""The delivery lanes: one delivery at a time per lane, claimed under a lease, completed with its
follow-ups, retried later, or set aside; and the thread a case's lane posts into."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from bridge.adapters.redis.codec import Claim, as_text, decode_item, encode_item, now_ms

__all__ = ["LaneStore", "now_ms"]
from bridge.adapters.redis.keys import Keys

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


class LaneStore:
    """The lanes' atomic steps (a part of Store)."""

    redis: Redis
    keys: Keys

    def _register_lanes(self) -> None:
        self._set_thread = self.redis.register_script(_SET_THREAD)
        self._claim = self.redis.register_script(_CLAIM)
        self._complete = self.redis.register_script(_COMPLETE)
        self._retry = self.redis.register_script(_RETRY)
        self._renew_lane = self.redis.register_script(_RENEW_LANE)

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
