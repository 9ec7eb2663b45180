"""The pseudonyms' key against a real redis-server: its fingerprint, a different key refused, the
move of an older release's key out of Redis with the same pseudonyms, and processes starting at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.pseudonym import PseudonymKeyRefused, fingerprint
from bridge.adapters.redis.store import Store
from bridge.config.settings import pseudonym_key_bytes
from bridge.core.ids import LineUserId
from tests.conftest import RedisServer, line_user_id

pytestmark = pytest.mark.redis

KEYS = Keys()
CHILD = LineUserId(line_user_id(1))


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


async def snapshot(redis: Redis) -> dict[bytes, bytes | None]:
    return {key: await redis.dump(key) async for key in redis.scan_iter()}


def old_release_pseudonym(stored: bytes, child: str) -> str:
    """How the release before BRIDGE_PSEUDONYM_KEY derived a pseudonym from the key it kept in
    Redis (its Store.prepare and child_key, line for line): the stored text's bytes, not decoded."""
    secret = stored.decode().encode()
    return hmac.new(secret, child.encode(), hashlib.sha256).hexdigest()[:32]


async def old_release_starts(redis: Redis) -> bytes:
    """What the release before BRIDGE_PSEUDONYM_KEY did at start: make the key if none, read it."""
    await redis.set(KEYS.pseudonym_key, secrets.token_hex(32), nx=True)
    stored = await redis.get(KEYS.pseudonym_key)
    assert isinstance(stored, bytes)
    return stored


async def prepared(redis_server: RedisServer, key: bytes) -> Store:
    """A store on a connection of its own (as a process has), prepared with key."""
    store = Store(Redis.from_url(redis_server.url), child_key_secret=key)
    try:
        await store.prepare()
    except BaseException:
        await store.redis.aclose()
        raise
    return store


async def starts(redis_server: RedisServer, key: bytes) -> str:
    """Prepare a store with key, as a process starting does; its pseudonym for CHILD."""
    store = await prepared(redis_server, key)
    await store.redis.aclose()
    return store.child_key(CHILD)


async def test_a_new_redis_keeps_the_fingerprint_not_the_key(redis: Redis, redis_server: RedisServer) -> None:
    key = secrets.token_bytes(32)
    store = await prepared(redis_server, key)
    await store.redis.aclose()
    kept = await redis.get(KEYS.pseudonym_fingerprint)
    assert kept == fingerprint(key).encode()
    everything = b"".join(v or b"" for v in (await snapshot(redis)).values())
    assert key not in everything and key.hex().encode() not in everything
    assert not await redis.exists(KEYS.pseudonym_key)  # nothing made at random any more
    again = await prepared(redis_server, key)  # the same key starts again
    assert again.child_key(CHILD) == hmac.new(key, CHILD.encode(), hashlib.sha256).hexdigest()[:32]
    await again.redis.aclose()


async def test_a_different_key_is_refused_and_changes_nothing(redis: Redis, redis_server: RedisServer) -> None:
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    await starts(redis_server, key)
    before = await snapshot(redis)
    with pytest.raises(PseudonymKeyRefused) as refused:
        await prepared(redis_server, other)
    message = str(refused.value)
    assert "BRIDGE_PSEUDONYM_KEY is not the key this Redis's pseudonyms were made with" in message
    for secret in (key, other):
        assert secret.hex() not in message and fingerprint(secret) not in message
    assert await snapshot(redis) == before


async def test_processes_with_one_key_starting_at_once_all_start(redis: Redis, redis_server: RedisServer) -> None:
    key = secrets.token_bytes(32)
    stores = await asyncio.gather(*(prepared(redis_server, key) for _ in range(8)))
    assert len({store.child_key(CHILD) for store in stores}) == 1
    for store in stores:
        await store.redis.aclose()
    assert await redis.get(KEYS.pseudonym_fingerprint) == fingerprint(key).encode()


async def test_of_processes_with_different_keys_starting_at_once_one_starts(
    redis: Redis, redis_server: RedisServer
) -> None:
    keys = [secrets.token_bytes(32) for _ in range(8)]
    results = await asyncio.gather(*(prepared(redis_server, key) for key in keys), return_exceptions=True)
    started = [(key, result) for key, result in zip(keys, results, strict=True) if isinstance(result, Store)]
    refused = [result for result in results if isinstance(result, PseudonymKeyRefused)]
    assert len(started) == 1 and len(refused) == 7, results
    ((winner, store),) = started
    await store.redis.aclose()
    assert await redis.get(KEYS.pseudonym_fingerprint) == fingerprint(winner).encode()


# --- moving an older release's key to the environment ----------------------------------------


async def test_the_moved_key_gives_the_old_pseudonyms_and_leaves_redis(redis: Redis, redis_server: RedisServer) -> None:
    stored = await old_release_starts(redis)
    children = [LineUserId(line_user_id(n)) for n in range(1, 6)]
    before = [old_release_pseudonym(stored, child) for child in children]
    # What `bridge pseudonym-key migrate` prints, read back as the setting is.
    moved = pseudonym_key_bytes(stored.hex())
    store = await prepared(redis_server, moved)
    assert [store.child_key(child) for child in children] == before
    await store.redis.aclose()
    assert await redis.get(KEYS.pseudonym_fingerprint) == fingerprint(moved).encode()
    assert await redis.type(KEYS.pseudonym_key) == b"hash"  # the marker: the secret is gone
    everything = b"".join(v or b"" for v in (await snapshot(redis)).values())
    assert stored not in everything
    again = await prepared(redis_server, moved)  # and the next start is an ordinary one
    assert again.child_key(children[0]) == before[0]
    await again.redis.aclose()


async def test_a_pseudonym_from_before_the_move_is_unchanged(redis: Redis, redis_server: RedisServer) -> None:
    # The known answer, computed by the release before BRIDGE_PSEUDONYM_KEY (Store.prepare with
    # this key in Redis, then child_key): it must never change, or every child's case is lost.
    await redis.set(KEYS.pseudonym_key, "0123456789abcdef" * 4)
    store = await prepared(redis_server, pseudonym_key_bytes(("0123456789abcdef" * 4).encode().hex()))
    assert store.child_key(LineUserId("U" + "0" * 31 + "1")) == "ef50192c3b610a31cb21e77fce95cf2e"
    await store.redis.aclose()


async def test_an_old_key_in_redis_refuses_any_other_key(redis: Redis, redis_server: RedisServer) -> None:
    stored = await old_release_starts(redis)
    before = await snapshot(redis)
    # A fresh key, and the old key's text read as hex (its 32 bytes, not the 64 the HMAC was keyed with).
    for key in (secrets.token_bytes(32), pseudonym_key_bytes(stored.decode())):
        with pytest.raises(PseudonymKeyRefused) as refused:
            await prepared(redis_server, key)
        assert "run `bridge pseudonym-key migrate`" in str(refused.value)
        assert stored.decode() not in str(refused.value)
    assert await snapshot(redis) == before


async def test_processes_moving_the_key_at_once_all_start(redis: Redis, redis_server: RedisServer) -> None:
    stored = await old_release_starts(redis)
    stores = await asyncio.gather(*(prepared(redis_server, stored) for _ in range(6)))
    assert {store.child_key(CHILD) for store in stores} == {old_release_pseudonym(stored, CHILD)}
    for store in stores:
        await store.redis.aclose()
    assert await redis.type(KEYS.pseudonym_key) == b"hash"


async def test_an_older_release_refuses_to_start_once_the_key_has_moved(
    redis: Redis, redis_server: RedisServer
) -> None:
    stored = await old_release_starts(redis)
    await starts(redis_server, stored)
    # It would otherwise make a new random key and lose every child's case; it fails instead.
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await old_release_starts(redis)
    assert await redis.type(KEYS.pseudonym_key) == b"hash"


async def test_a_fingerprint_and_a_different_old_key_are_refused(redis: Redis, redis_server: RedisServer) -> None:
    # The marker removed by hand and an older release started again: it made a new key, and its
    # pseudonyms are not the moved key's. Neither key is accepted until the operator decides.
    stored = await old_release_starts(redis)
    await starts(redis_server, stored)
    await redis.delete(KEYS.pseudonym_key)
    await old_release_starts(redis)
    with pytest.raises(PseudonymKeyRefused, match="bridge pseudonym-key migrate"):
        await prepared(redis_server, stored)
