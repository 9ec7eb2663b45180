"""The inbound stream's partitions: which partition an event goes to, and one count per deployment.

A deployment's inbound stream is split into a fixed number of partitions
(``BRIDGE_ROUTER_PARTITIONS``, 1 by default: one stream, as before partitions). Each partition
has its own stream and its own router lease, so workers decide different partitions at the same
time; within one partition entries are decided in the order they were recorded.

- A LINE event goes to its child's partition: a fixed hash of the LINE user ID (not the
  pseudonym, whose key the web process does not hold; the hash is not secret, and a partition's
  number says nothing a key name could not).
- A Slack event about a case (a message in its thread, a control naming it) goes to the
  partition of the case's child, found in Redis by the same hash (the Lua twin below), so a
  child's messages and the counsellors' answers and controls of the child's case keep one order.
  A case whose child's ID is gone (erased, or past retention) and every other event go to
  partition 0, which also takes due timers and the standing pass. Two partitions deciding about
  the same case (a timer, and the child's message) cannot both win: the commit's version check
  makes the later one decide again from fresh reads.

The count is recorded in Redis by the first worker that starts (a web process only checks it,
once there is one). A process configured with another count refuses to start (events would go
to streams nobody reads). Changing it means draining: stop the web processes, let the workers
empty every stream, stop them, delete the count's key (keys.partition_count), start everything
with the new count.
"""

from __future__ import annotations

import hashlib

from bridge.adapters.redis.codec import as_text
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys

# The most partitions a deployment may have (each is one blocking read in one worker).
MAX_PARTITIONS = 64

# The hash in Lua, for the scripts that find a case's partition in Redis: the first 8 hex digits
# of the SHA-1 of the LINE user ID, modulo the count. (8 hex digits fit a Lua number exactly.)
LUA_PARTITION_OF = """
local function partition_of(child, count)
  if not child or child == '' or count <= 1 then return 0 end
  return tonumber(string.sub(redis.sha1hex(child), 1, 8), 16) % count
end
"""


def partition_of(child_id: str, count: int) -> int:
    """The partition of a child's events (the same as LUA_PARTITION_OF in Redis)."""
    if count <= 1 or not child_id:
        return 0
    return int(hashlib.sha1(child_id.encode()).hexdigest()[:8], 16) % count


class PartitionsRefused(Exception):
    """This process's partition count is not the deployment's."""


async def check_partition_count(redis: RedisClient, keys: Keys, count: int, *, record: bool = True) -> bool:
    """Record the deployment's partition count (record: a worker), or check it against the one
    recorded. False: none is recorded yet and record is False (the web, which writes nothing at
    start: it asks again later)."""
    if not 1 <= count <= MAX_PARTITIONS:
        raise PartitionsRefused(f"BRIDGE_ROUTER_PARTITIONS must be from 1 to {MAX_PARTITIONS}, not {count}")
    if record:
        await redis.set(keys.partition_count, str(count), nx=True)
    recorded = as_text(await redis.get(keys.partition_count) or b"")
    if not recorded and not record:
        return False
    if recorded != str(count):
        raise PartitionsRefused(
            f"this deployment's inbound stream has {recorded or '?'} partitions, but BRIDGE_ROUTER_PARTITIONS is "
            f"{count}: set it to {recorded}, or drain every stream first (see bridge/adapters/redis/partitions.py)"
        )
    return True
