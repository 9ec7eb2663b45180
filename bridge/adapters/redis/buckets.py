"""Pacing posts per channel: one token bucket per Slack channel, shared by every worker.

Slack lets an app post about one message per second into a channel, with short bursts; beyond
that it answers 429. Instead of learning the limit from 429s, every lane item that posts into a
channel names its bucket (its *pace tag*, written by the engine when it enqueues the item:
``"<interval ms>:<tolerance ms>:<channel>"``), and the lane scripts consult the bucket when they
take the lane (``bucket_wait``, called by ``take_lane`` in lanes.py).

The bucket is a GCRA (the generic cell rate algorithm, a token bucket kept as one number): the
*theoretical arrival time* ``tat`` of the next post. A post conforms when ``tat - tolerance <=
now``; it then moves ``tat`` on by one interval. ``tolerance = (burst - 1) * interval`` lets
``burst`` posts go back to back.

A lane whose post does not conform *reserves* the next free instant of its channel: ``tat`` moves
on as if it had posted, and the lane becomes due at its reserved slot (kept on the lane with an
expiry, so a lane that is emptied or erased leaves nothing behind). At its slot the lane is taken
without asking again. So lanes waiting for one channel are served in the order they asked, each
at its own instant, however many deliverers look: no lane is overtaken by one that asked later,
none waits while another posts again and again, and nobody polls an empty bucket (the earliest
due lane is the next slot, which the deliverers' outlook reports).

Items without a tag (LINE pushes, reactions, root updates, items queued by an older release)
never wait. A lane that is leased is left to ``take_lane`` untouched, so a look at a lane being
delivered uses no token.
"""

from __future__ import annotations

__all__ = ["BUCKET_FUNCTIONS", "PACE_TAG_PATTERN", "SLOT_KEPT_MS"]

# How long a reserved slot is kept past its instant for a lane no deliverer took at once (all
# busy): after that the lane asks again, at the end of the line.
SLOT_KEPT_MS = 60_000

# An item's pace tag, where encode_item puts it: right after its enqueue time.
PACE_TAG_PATTERN = r'^[^|]*\|\{"at":-?\d+,"pace":"([^"]*)"'

# bucket_wait(prefix, lane, now) -> ms the lane must wait for its channel's bucket (0: go now).
BUCKET_FUNCTIONS = (
    f"local SLOT_KEPT_MS = {SLOT_KEPT_MS}\n"
    + """
local function bucket_wait(prefix, lane, now)
  if redis.call('EXISTS', prefix .. 'lease:' .. lane) == 1 then return 0 end
  local item = redis.call('LINDEX', prefix .. 'lane:' .. lane, 0)
  if not item then return 0 end
  local interval, tolerance, channel = string.match(item, '^[^|]*|{"at":%-?%d+,"pace":"(%d+):(%d+):([^"]+)"')
  if not channel then return 0 end
  local slot_key = prefix .. 'slot:' .. lane
  local slot = tonumber(redis.call('GET', slot_key))
  if slot then
    if slot > now then return slot - now end
    redis.call('DEL', slot_key)
    return 0
  end
  local bucket = prefix .. 'bucket:' .. channel
  local tat = math.max(tonumber(redis.call('GET', bucket) or '0'), now)
  local next_tat = tat + tonumber(interval)
  redis.call('SET', bucket, next_tat, 'PX', next_tat - now)
  local at = tat - tonumber(tolerance)
  if at <= now then return 0 end
  redis.call('SET', slot_key, at, 'PX', at - now + SLOT_KEPT_MS)
  return at - now
end
"""
)
