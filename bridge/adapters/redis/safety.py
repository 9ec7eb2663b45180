"""What the bridge asks of the Redis it is given, checked at start."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, ResponseError, TryAgainError

from bridge.adapters.redis.connect import RedisClient

log = logging.getLogger("bridge.redis")

# Any other policy lets Redis delete keys when memory runs short: a recorded child's message,
# a delivery waiting in its lane or a de-duplication marker could vanish.
SAFE_EVICTION = "noeviction"


class UnsafeRedis(RuntimeError):
    """The Redis would lose data the bridge promised to keep."""


async def check_no_eviction(redis: RedisClient) -> None:
    """Raise UnsafeRedis when Redis may evict keys: on a cluster, when any node may (a replica
    too, which becomes a master when its master fails). A Redis that does not say (INFO
    refused, as some hosted ones and the demo's embedded fake do) is accepted, with a warning."""
    try:
        if isinstance(redis, RedisCluster):
            infos: Any = await redis.info("memory", target_nodes=RedisCluster.ALL_NODES)
            # One node answers with its own INFO, several with one per node, by node name.
            by_node = infos if "maxmemory_policy" not in infos else {"the one node": infos}
        else:
            by_node = {"": await redis.info("memory")}
    except (ClusterDownError, TryAgainError):
        raise  # not a refusal of INFO: the cluster is not answering yet (asked again at start-up)
    except ResponseError:
        log.warning("could not read Redis's maxmemory-policy; make sure it is %s", SAFE_EVICTION)
        return
    for node, info in sorted(by_node.items()):
        where = f" on node {node}" if node else ""
        policy = info.get("maxmemory_policy")
        if policy is None:
            log.warning("Redis did not say its maxmemory-policy%s; make sure it is %s", where, SAFE_EVICTION)
        elif str(policy) != SAFE_EVICTION:
            raise UnsafeRedis(
                f"Redis's maxmemory-policy is {policy}{where}: it may delete children's messages and queued"
                f" deliveries when memory runs short. Set maxmemory-policy {SAFE_EVICTION}"
                f"{' on every node' if where else ''}."
            )
