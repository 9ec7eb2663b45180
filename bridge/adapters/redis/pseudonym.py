"""The pseudonyms' key against Redis: every process of a deployment must derive the same pseudonyms.

A child's Redis key names carry an HMAC of the LINE user ID (Store.child_key), keyed by
BRIDGE_PSEUDONYM_KEY. A different key would derive different names: no open case, block or
history of any child would be found again, silently. So Redis keeps the key's fingerprint (an HMAC
of a fixed text under the key, which does not give the key away), and a process starts only with
the key whose fingerprint is kept there. The first process on a new Redis stores it.

Releases before BRIDGE_PSEUDONYM_KEY kept the key itself in Redis, made at random. Moving it to the
environment (``bridge pseudonym-key migrate``) keeps its bytes exactly, so the pseudonyms stay the
same: the first process that starts with it stores the fingerprint and removes the key from Redis.
A marker takes the key's place: an older release reading it fails at start (a hash where it expects
a string) instead of making a new random key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from redis.exceptions import ResponseError, WatchError

from bridge.adapters.redis.codec import as_text
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys

_FINGERPRINT_TEXT = b"bridge pseudonym key fingerprint"
# What takes the old key's place once it has moved (a hash: see the module's docstring).
MOVED_FIELD, MOVED_TO = "moved-to", "BRIDGE_PSEUDONYM_KEY"
MIGRATE = "bridge pseudonym-key migrate"


class PseudonymKeyRefused(Exception):
    """BRIDGE_PSEUDONYM_KEY is not the key of this Redis's pseudonyms. The message says what to do
    and never carries a key or its fingerprint."""


def fingerprint(key: bytes) -> str:
    """What Redis keeps of the key: 128 bits of an HMAC-SHA256 of a fixed text under it."""
    return hmac.new(key, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:32]


async def check_pseudonym_key(redis: RedisClient, keys: Keys, key: bytes) -> None:
    """Return if key is the key of this Redis's pseudonyms, recording its fingerprint on a new
    Redis and moving an older release's key out of Redis once it matches; else raise
    PseudonymKeyRefused and change nothing.

    Safe when several processes start at once: the check and its writes are one transaction
    (WATCH), so of processes with different keys on a new Redis exactly one starts."""
    wanted = fingerprint(key)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.pseudonym_fingerprint, keys.pseudonym_key)
                kept: Any = await pipe.get(keys.pseudonym_fingerprint)
                old = await _old_key(pipe, keys)
                if kept is not None and as_text(kept) != wanted:
                    raise PseudonymKeyRefused(
                        "BRIDGE_PSEUDONYM_KEY is not the key this Redis's pseudonyms were made with (its"
                        " fingerprint differs): with it no child's open case, block or history would be found."
                        " Set BRIDGE_PSEUDONYM_KEY to the key every other process of this deployment has"
                    )
                if old is not None and not hmac.compare_digest(old, key):
                    raise PseudonymKeyRefused(
                        "Redis still holds the pseudonym key of a release before BRIDGE_PSEUDONYM_KEY, and"
                        f" BRIDGE_PSEUDONYM_KEY is not that key: run `{MIGRATE}` and set BRIDGE_PSEUDONYM_KEY"
                        " to what it prints (see the README, Upgrading)"
                    )
                if kept is not None and old is None:
                    return  # nothing to write (pipe's context resets the WATCH)
                pipe.multi()  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)
                pipe.set(keys.pseudonym_fingerprint, wanted)
                if old is not None:  # the key has moved to the environment: Redis no longer holds it
                    pipe.delete(keys.pseudonym_key)
                    pipe.hset(keys.pseudonym_key, MOVED_FIELD, MOVED_TO)
                await pipe.execute()
                return
            except WatchError:
                continue  # another process wrote first: check again against what it wrote


async def _old_key(client: Any, keys: Keys) -> bytes | None:
    """The key an older release made and kept in Redis, as the bytes it keyed its HMAC with (the
    stored text, never decoded from hex); None if there is none or only the marker."""
    try:
        stored = await client.get(keys.pseudonym_key)
    except ResponseError as exc:
        if "WRONGTYPE" not in str(exc):
            raise
        return None  # the marker (a hash): the key has moved
    return stored.encode() if isinstance(stored, str) else stored


async def read_old_key(redis: RedisClient, keys: Keys) -> bytes | None:
    """The key an older release kept in Redis, if it is still there (for the migration)."""
    return await _old_key(redis, keys)


async def has_fingerprint(redis: RedisClient, keys: Keys) -> bool:
    """Whether a key's fingerprint is kept (a process of this release has started on this Redis)."""
    return bool(await redis.exists(keys.pseudonym_fingerprint))
