"""What the bridge asks of the Redis it is given, checked at start."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger("bridge.redis")

# Any other policy lets Redis delete keys when memory runs short: a recorded child's message,
# a delivery waiting in its lane or a de-duplication marker could vanish.
SAFE_EVICTION = "noeviction"


class UnsafeRedis(RuntimeError):
    """The Redis would lose data the bridge promised to keep."""


async def check_no_eviction(redis: Redis) -> None:
    """Raise UnsafeRedis when Redis may evict keys. A Redis that does not say (INFO refused,
    as some hosted ones and the demo's embedded fake do) is accepted, with a warning."""
    try:
        info: Any = await redis.info("memory")
    except ResponseError:
        log.warning("could not read Redis's maxmemory-policy; make sure it is %s", SAFE_EVICTION)
        return
    policy = info.get("maxmemory_policy")
    if policy is None:
        log.warning("Redis did not say its maxmemory-policy; make sure it is %s", SAFE_EVICTION)
        return
    if str(policy) != SAFE_EVICTION:
        raise UnsafeRedis(
            f"Redis's maxmemory-policy is {policy}: it may delete children's messages and queued deliveries "
            f"when memory runs short. Set maxmemory-policy {SAFE_EVICTION}."
        )
