"""The one place a Redis client is made from where Redis is (config/redis_url.py): a client for one
server, or redis-py's asyncio RedisCluster for a Redis Cluster; and the key layout each one needs.

Everything the bridge does in Redis is written against RedisClient, either of the two. On a
cluster, every key carries one hash tag (keys.py), so every script, transaction and pipeline the
bridge runs has its keys in one slot, as a cluster requires; pub/sub (the deliverers' wake-ups) is
redis-py's ClusterPubSub, and the checks at start ask every node (safety.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.adapters.redis.keys import CLUSTER_TAG, Keys
from bridge.config.redis_url import RedisTarget

RedisClient: TypeAlias = Redis | RedisCluster

CONNECT_TIMEOUT_S = 5
POOL_WAIT_S = 5

# What Redis not answering *now* looks like (not up yet, restarting, loading its data, a cluster
# between failovers): worth asking again. A refusal (a wrong password, a command refused) is not.
REDIS_AWAY: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
)


def redis_away(exc: Exception) -> bool:
    """Whether exc says only that Redis does not answer now (see REDIS_AWAY)."""
    return isinstance(exc, REDIS_AWAY) and not isinstance(exc, AuthenticationError)


def open_redis(target: RedisTarget, *, socket_timeout: float, max_connections: int | None = None) -> RedisClient:
    """A client for target; nothing connects until the first command.

    max_connections bounds the connections the client keeps (to each node, on a cluster). On one
    server a command beyond them waits up to POOL_WAIT_S for one to come free (a burst of webhooks
    waits rather than fails); redis-py's cluster client has no waiting pool, so there it fails at
    once with MaxConnectionsError (a RedisError: the web answers 503 and LINE or Slack
    redelivers)."""
    if target.is_cluster:
        options: dict[str, Any] = {}
        if max_connections is not None:
            options["max_connections"] = max_connections
        # The first node comes from the URL (with the credentials, TLS and options for all).
        return RedisCluster.from_url(
            target.url,
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes[1:]],
            socket_timeout=socket_timeout,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            **options,
        )
    if max_connections is None:
        return Redis.from_url(target.url, socket_timeout=socket_timeout, socket_connect_timeout=CONNECT_TIMEOUT_S)
    pool = BlockingConnectionPool.from_url(
        target.url,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
    return Redis(connection_pool=pool)


async def pipelined_script(pipe: Any, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int]) -> None:
    """Queue a script's call on a pipeline: by its SHA on one server (redis-py's pipeline loads a
    script the server lacks before it sends), by its text on a cluster, whose pipeline in redis-py
    refuses EVALSHA (it could not load a script a node lacks); EVAL needs nothing loaded, and the
    node keeps the compiled script for the next call all the same."""
    if isinstance(pipe, ClusterPipeline):
        pipe.eval(cast(str, script.script), len(keys), *keys, *args)  # (the bridge's scripts are str)
    else:
        await script(keys=keys, args=args, client=pipe)


async def subscriber(redis: RedisClient) -> PubSub:
    """A pub/sub connection of this client (it connects at its first SUBSCRIBE). A cluster client
    learns the cluster's map first if it has not yet: redis-py's ClusterPubSub picks the node to
    subscribe on from it, and fails without it. (A PUBLISH reaches subscribers on every node.)"""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
    return redis.pubsub()


def keys_for(redis: RedisClient) -> Keys:
    """The key layout for this client: one hash tag for every key on a cluster, the three tags of
    one server otherwise (keys.py)."""
    return Keys(slot_tag=CLUSTER_TAG) if isinstance(redis, RedisCluster) else Keys()
