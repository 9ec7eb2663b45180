"""Start-up refuses a Redis that may evict keys (a real redis-server)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bridge.adapters.redis.safety import UnsafeRedis, check_no_eviction
from tests.conftest import RedisServer

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "allkeys-random"])
async def test_a_redis_that_may_evict_keys_is_refused(redis_server: RedisServer, policy: str) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        await client.config_set("maxmemory-policy", policy)
        with pytest.raises(UnsafeRedis, match=f"maxmemory-policy is {policy}.*noeviction"):
            await check_no_eviction(client)
        await client.config_set("maxmemory-policy", "noeviction")
        await check_no_eviction(client)  # accepted
    finally:
        await client.config_set("maxmemory-policy", "noeviction")
        await client.aclose()
