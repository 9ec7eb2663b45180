"""The delivery lanes: one delivery at a time per lane, claimed under a lease, completed with its
follow-ups, retried later, or set aside; and the thread a case's lane posts into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bridge.adapters.redis.buckets import BUCKET_FUNCTIONS
from bridge.adapters.redis.codec import Claim, as_text, decode_item, encode_item, item_pace, now_ms
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.heartbeat import ALIVE_MS
from bridge.adapters.redis.keys import Keys, thread_of_field
from bridge.core.ids import ThreadTs

__all__ = ["LANE_FUNCTIONS", "FollowUp", "LaneStore", "Outlook", "claims_from", "now_ms"]


class FollowUp(NamedTuple):
    """A delivery that follows a completed one, enqueued in the same step."""

    lane: str
    item_id: str
    payload: dict[str, Any]
    pace: str | None = None  # the channel bucket its post waits for (buckets.py)


# KEYS[1] case hash, KEYS[2] by-thread, KEYS[3] lane threads; ARGV: number, thread ts, lane, and
# the pool's channel the thread is in ('' for SLACK_CHANNEL_ID). Records the Slack thread of a case
# once (the root post's answer, or the earlier post found), under its field (keys.thread_field:
# "<channel>:<ts>", or the bare ts without a channel); nothing for a case whose record is gone
# meanwhile (erased on request while its root was posted). A thread recorded before is kept.
_SET_THREAD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local new = redis.call('HSETNX', KEYS[1], 'thread_ts', ARGV[2]) == 1
local field = redis.call('HGET', KEYS[1], 'thread_ts')
if ARGV[4] ~= '' then field = ARGV[4] .. ':' .. field end
if new then
  redis.call('HINCRBY', KEYS[1], 'v', 1)
  redis.call('HSET', KEYS[2], field, ARGV[1])
end
redis.call('HSETNX', KEYS[3], ARGV[3], field)
return 1
"""

CLAIM_FIELDS = 5  # the values take_lane gives for each lane it leased

# Shared by claim, complete and the router's commit. take_lane leases one due lane for token and
# appends lane, item, attempts, failures and the lane's thread (its field, keys.thread_field) to out
# (attempts: the head's claims, counted here; failures: those of its attempts that failed, counted
# by retry_later, in the same hash under "<id>|f", which no item id can be); a lane to a paused
# platform moves to the end of the pause. A claimed lane is due again after the lease or after
# ALIVE_MS, whichever is sooner: whoever looks at it then finds it leased and either leaves it (the
# holder is alive) or takes it over (the holder's heartbeat is older than ALIVE_MS: it died), so a
# killed worker's lanes move on in seconds instead of when their leases run out. A lease token is
# "<worker name>:<suffix>"; a holder that never beat (an older release, a test's token) keeps its
# lease until it runs out. A lane whose item posts into a Slack channel first waits for that
# channel's bucket (bucket_wait, buckets.py): it becomes due at its reserved slot instead.
# claim_lanes takes up to max due lanes. outlook returns {earliest due ms or -1, lanes due now}.
LANE_FUNCTIONS = (
    BUCKET_FUNCTIONS
    + f"local ALIVE_MS = {ALIVE_MS}\n"
    + f"local CLAIM_FIELDS = {CLAIM_FIELDS}\n"
    + """
local function holder_dead(prefix, holder, now)
  local owner = string.match(holder, '^(.*):[^:]*$')
  if not owner then return false end
  local beat = redis.call('ZSCORE', prefix .. 'workers', owner)
  return beat ~= false and tonumber(beat) < now - ALIVE_MS
end
local function take_lane(due, attempts, threads, prefix, now, lease_ms, token, lane, out)
  local platform = string.match(lane, '^([%w]+):')
  local pause = redis.call('PTTL', prefix .. 'pause:' .. (platform or ''))
  if pause > 0 then
    redis.call('ZADD', due, now + pause, lane)
    return
  end
  local wait = bucket_wait(prefix, lane, now)
  if wait > 0 then
    redis.call('ZADD', due, now + wait, lane)
    return
  end
  local lease_key = prefix .. 'lease:' .. lane
  local taken = redis.call('SET', lease_key, token, 'NX', 'PX', lease_ms)
  if not taken then
    local holder = redis.call('GET', lease_key)
    if holder and holder ~= token and holder_dead(prefix, holder, now) then
      taken = redis.call('SET', lease_key, token, 'PX', lease_ms)
    end
  end
  if taken then
    local item = redis.call('LINDEX', prefix .. 'lane:' .. lane, 0)
    if not item then
      redis.call('ZREM', due, lane)
      redis.call('DEL', lease_key)
    else
      redis.call('ZADD', due, now + math.min(lease_ms, ALIVE_MS), lane)
      local id = string.match(item, '^([^|]*)|')
      table.insert(out, lane)
      table.insert(out, item)
      table.insert(out, redis.call('HINCRBY', attempts, id, 1))
      table.insert(out, tonumber(redis.call('HGET', attempts, id .. '|f') or '0'))
      table.insert(out, redis.call('HGET', threads, lane) or '')
    end
  else
    local left = redis.call('PTTL', lease_key)
    if left > 0 then redis.call('ZADD', due, now + math.min(left, ALIVE_MS), lane) end
  end
end
local function claim_lanes(due, attempts, threads, prefix, now, lease_ms, token, max)
  local out = {}
  local lanes = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, max * 4)
  for _, lane in ipairs(lanes) do
    if #out >= max * CLAIM_FIELDS then break end
    take_lane(due, attempts, threads, prefix, now, lease_ms, token, lane, out)
  end
  return out
end
-- Releases the leases token holds on lanes due from since up to till (a claimed lane is due at
-- most a lease ahead), making those lanes due now: for a deliverer's own token, which holds no
-- lane when it claims, after one of its calls went unanswered (Redis went away as it answered):
-- a lane that call leased is one its holder never heard of, and would stay leased by a living
-- worker until the lease ran out. (The router's hand-off token is shared: never released so.)
local function release_unknown(due, prefix, token, since, till, now)
  for _, lane in ipairs(redis.call('ZRANGEBYSCORE', due, since, till, 'LIMIT', 0, 1000)) do
    local lease_key = prefix .. 'lease:' .. lane
    if redis.call('GET', lease_key) == token then
      redis.call('DEL', lease_key)
      redis.call('ZADD', due, now, lane)
    end
  end
end
local function outlook(due, now)
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  return {first[2] or '-1', redis.call('ZCOUNT', due, '-inf', now)}
end
"""
)

# KEYS[1] due, KEYS[2] attempts, KEYS[3] lane threads; ARGV: lanes prefix, now, lease ms, token,
# max, wake channel, release since ('' none: see release_unknown). Returns {claims, outlook} (see
# LANE_FUNCTIONS); other deliverers are woken when lanes are due that this one did not take.
_CLAIM = (
    LANE_FUNCTIONS
    + """
local now = tonumber(ARGV[2])
if ARGV[7] ~= '' then release_unknown(KEYS[1], ARGV[1], ARGV[4], ARGV[7], now + tonumber(ARGV[3]), now) end
local claims = claim_lanes(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]))
local seen = outlook(KEYS[1], now)
if #claims > 0 and tonumber(seen[2]) > 0 then redis.call('PUBLISH', ARGV[6], '1') end
return {claims, seen}
"""
)

# KEYS[1] due, KEYS[2] attempts, KEYS[3] set-aside stream, KEYS[4] lane threads; ARGV: lanes
# prefix, lane, token, item ids (the head's, then those of the items behind it that one post
# carried with it, separated by spaces), now, wake channel, aside (not '': the item moves to the set-aside
# stream, with this as why), claim next ('1': lease the next due lane in the same step), lease
# ms, release since ('' none: see release_unknown, before the claim), then follow-up lane, item
# pairs. Pops the items while they are still the head, enqueues follow-ups in the same step, and
# releases the lease if still ours. Returns {popped, claims, outlook}. Other deliverers are woken
# only when lanes are due that this one did not take.
_COMPLETE = (
    LANE_FUNCTIONS
    + """
local now = tonumber(ARGV[5])
local lane_key = ARGV[1] .. 'lane:' .. ARGV[2]
local popped = 0
for id in string.gmatch(ARGV[4], '%S+') do
  local head = redis.call('LINDEX', lane_key, 0)
  if not (head and string.match(head, '^([^|]*)|') == id) then break end
  if ARGV[7] ~= '' then
    redis.call('XADD', KEYS[3], '*', 'lane', ARGV[2], 'item', head, 'why', ARGV[7])
  end
  redis.call('LPOP', lane_key)
  redis.call('HDEL', KEYS[2], id, id .. '|f')
  popped = 1
end
if popped == 1 then
  for i = 11, #ARGV, 2 do
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
if ARGV[10] ~= '' then release_unknown(KEYS[1], ARGV[1], ARGV[3], ARGV[10], now + tonumber(ARGV[9]), now) end
local claims = {}
if ARGV[8] == '1' then
  claims = claim_lanes(KEYS[1], KEYS[2], KEYS[4], ARGV[1], now, tonumber(ARGV[9]), ARGV[3], 1)
end
local seen = outlook(KEYS[1], now)
if tonumber(seen[2]) > 0 then redis.call('PUBLISH', ARGV[6], '1') end
return {popped, claims, seen}
"""
)

# KEYS[1] due, KEYS[2] attempts; ARGV: lanes prefix, lane, token, due at, item id, replacement
# item ('' keeps it), failed ('1': the attempt counts among the item's failures).
_RETRY = """
local lease_key = ARGV[1] .. 'lease:' .. ARGV[2]
if redis.call('GET', lease_key) ~= ARGV[3] then return 0 end
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[5] .. '|f', 1) end
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
_RENEW_LANE = (
    f"local ALIVE_MS = {ALIVE_MS}\n"
    + """
local lease_key = ARGV[1] .. 'lease:' .. ARGV[2]
if redis.call('GET', lease_key) ~= ARGV[3] then return 0 end
redis.call('PEXPIRE', lease_key, ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[5]) + math.min(tonumber(ARGV[4]), ALIVE_MS), ARGV[2])
return 1
"""
)


class LaneStore:
    """The lanes' atomic steps (a part of Store)."""

    redis: RedisClient
    keys: Keys

    def _register_lanes(self) -> None:
        self._set_thread = self.redis.register_script(_SET_THREAD)
        self._claim = self.redis.register_script(_CLAIM)
        self._complete = self.redis.register_script(_COMPLETE)
        self._retry = self.redis.register_script(_RETRY)
        self._renew_lane = self.redis.register_script(_RENEW_LANE)

    async def record_thread(self, number: int, lane: str, thread_ts: str, channel: str | None = None) -> None:
        """Record a case's Slack thread once: on the case, in the lookup by thread, and for its
        lane, whose later deliveries post into it. channel: the pool's channel it is in (None:
        SLACK_CHANNEL_ID). Recording it again changes nothing, and so does recording it for a
        case whose record is gone."""
        await self._set_thread(
            keys=[self.keys.case(number), self.keys.by_thread, self.keys.lane_threads],
            args=[number, thread_ts, lane, channel or ""],
        )

    async def claim(self, *, token: str, lease_ms: int, max_lanes: int) -> list[Claim]:
        claims, _ = await self.claim_with_outlook(token=token, lease_ms=lease_ms, max_lanes=max_lanes)
        return claims

    async def claim_with_outlook(
        self, *, token: str, lease_ms: int, max_lanes: int, release_since: int | None = None
    ) -> tuple[list[Claim], Outlook]:
        """Lease up to max_lanes due lanes; and what is due besides (in the same round trip).

        release_since (ms): first release every lease token holds on a lane due since then,
        making the lane due now. For a token whose holder holds no lane now, after a call of its
        that may have leased one went unanswered at about that time (Redis went away)."""
        since = "" if release_since is None else release_since
        raw: Any = await self._claim(
            keys=[self.keys.due, self.keys.attempts, self.keys.lane_threads],
            args=[self.keys.lanes_prefix, now_ms(), lease_ms, token, max_lanes, self.keys.wake_channel, since],
        )
        return claims_from(raw[0]), _outlook(raw[1])

    async def complete(
        self,
        claim: Claim,
        *,
        token: str,
        followups: Sequence[FollowUp] = (),
        set_aside_because: str | None = None,
    ) -> bool:
        """Pop a delivered (or finally failed) item and append its follow-ups in one step.

        With set_aside_because (why, for an operator: no content), the item is kept in the
        set-aside stream instead.
        """
        popped, _, _ = await self.complete_and_claim(
            claim, token=token, followups=followups, set_aside_because=set_aside_because
        )
        return popped

    async def complete_and_claim(
        self,
        claim: Claim,
        *,
        token: str,
        followups: Sequence[FollowUp] = (),
        set_aside_because: str | None = None,
        lease_ms: int | None = None,
        carried: Sequence[str] = (),
        release_since: int | None = None,
    ) -> tuple[bool, list[Claim], Outlook]:
        """As complete; with lease_ms, the next due lane is leased for the same token in the
        same step (a busy deliverer needs one round trip per delivery, not two), after releasing
        what the token holds besides with release_since (as claim_with_outlook). carried: the
        ids of the items right behind the head that its post carried too: popped with it."""
        now = now_ms()
        args: list[str | int] = [
            self.keys.lanes_prefix,
            claim.lane,
            token,
            " ".join([claim.item_id, *carried]),
            now,
            self.keys.wake_channel,
            "" if set_aside_because is None else set_aside_because or "-",
            "0" if lease_ms is None else "1",
            lease_ms or 0,
            "" if release_since is None else release_since,
        ]
        for lane, item_id, payload, pace in followups:
            args += [lane, encode_item(item_id, payload, now, pace)]
        keys = [self.keys.due, self.keys.attempts, self.keys.deliveries_set_aside, self.keys.lane_threads]
        raw: Any = await self._complete(keys=keys, args=args)
        return bool(raw[0]), claims_from(raw[1]), _outlook(raw[2])

    async def waiting_behind(self, lane: str, count: int) -> list[str]:
        """Up to count items waiting behind a lane's head, encoded, in order (read by the lease
        holder: nobody else pops them meanwhile)."""
        raw: list[Any] = await self.redis.lrange(self.keys.lane(lane), 1, count)
        return [as_text(item) for item in raw]

    async def set_aside_delivery(self, claim: Claim, *, token: str, why: str) -> bool:
        """Take an item out of its lane into the set-aside stream, so the lane moves on; why is
        kept with it for an operator (no content)."""
        return await self.complete(claim, token=token, set_aside_because=why)

    async def renew_lane_lease(self, lane: str, *, token: str, lease_ms: int) -> bool:
        """Extend a lane lease this token holds; False if it was lost to another worker."""
        args: list[str | int] = [self.keys.lanes_prefix, lane, token, lease_ms, now_ms()]
        return bool(await self._renew_lane(keys=[self.keys.due], args=args))

    async def retry_later(
        self,
        claim: Claim,
        *,
        token: str,
        delay_s: float,
        replacement: dict[str, Any] | None = None,
        failed: bool = False,
    ) -> bool:
        """Release the lane until delay_s from now, optionally replacing the head item's payload.
        failed: the attempt failed, and the next claim's failures count it (the backoff grows
        with them)."""
        new_item = (
            encode_item(claim.item_id, replacement, claim.enqueued_ms, claim.pace) if replacement is not None else ""
        )
        due = now_ms() + int(delay_s * 1000)
        args: list[str | int] = [self.keys.lanes_prefix, claim.lane, token, due, claim.item_id, new_item, int(failed)]
        return bool(await self._retry(keys=[self.keys.due, self.keys.attempts], args=args))

    async def pause_platform(self, platform: str, seconds: float) -> None:
        """Pause every lane towards a platform (after a 429) for the given time."""
        await self.redis.set(self.keys.platform_pause(platform), "1", px=max(1, int(seconds * 1000)))


@dataclass(frozen=True)
class Outlook:
    """What the lanes hold besides the work just claimed."""

    next_due_in: float | None  # seconds until the earliest lane is due (0 if overdue); None: none queued
    due_now: int  # lanes due now that nobody has leased


def claims_from(raw: list[Any]) -> list[Claim]:
    """The claims a script returned, CLAIM_FIELDS values each."""
    return [_claim(raw[i : i + CLAIM_FIELDS]) for i in range(0, len(raw), CLAIM_FIELDS)]


def _claim(raw: list[Any]) -> Claim:
    item_id, payload, enqueued_ms = decode_item(item := as_text(raw[1]))
    channel, thread_ts = thread_of_field(as_text(raw[4]))
    lane, attempts, failures = as_text(raw[0]), int(raw[2]), int(raw[3])
    thread = ThreadTs(thread_ts) if thread_ts else None
    return Claim(lane, item_id, payload, attempts, enqueued_ms, failures, thread, item_pace(item), channel)


def _outlook(raw: list[Any]) -> Outlook:
    first = float(as_text(raw[0]))
    return Outlook(next_due_in=max(0.0, (first - now_ms()) / 1000) if first >= 0 else None, due_now=int(raw[1]))
