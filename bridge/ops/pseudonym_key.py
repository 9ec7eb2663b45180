"""`bridge pseudonym-key new | migrate`: the key of the pseudonyms in Redis key names.

`new` prints a fresh random key for a new deployment's BRIDGE_PSEUDONYM_KEY. `migrate` prints the
key an older release made and kept in Redis, in hex, for an existing deployment to put in its
environment: its bytes exactly, so every child's pseudonym stays the same. It changes nothing in
Redis; the first worker that starts with the key stores its fingerprint and removes the key from
Redis (adapters/redis/pseudonym.py). The key goes to stdout, alone on its line, and what to do
with it to stderr, so `bridge pseudonym-key migrate > file` keeps only the key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys

from redis.exceptions import RedisError

from bridge.adapters.redis.connect import keys_for, open_redis
from bridge.adapters.redis.pseudonym import has_fingerprint, read_old_key
from bridge.config.redis_url import RedisTarget, redis_target_from_environment
from bridge.config.settings import PSEUDONYM_KEY_MIN_BYTES

_KEEP_IT = (
    "Keep a copy in your secret store: it is the only one once a worker has started with it, and"
    " without it no child's open case, block or history can be found again."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "pseudonym-key", help="make the pseudonym key, or move an older release's to the environment"
    )
    actions = command.add_subparsers(dest="action", required=True)
    actions.add_parser("new", help="print a new random key (a new deployment only)").set_defaults(run=_new)
    actions.add_parser(
        "migrate", help="print the key an older release kept in Redis ($REDIS_URL), to set as BRIDGE_PSEUDONYM_KEY"
    ).set_defaults(run=_migrate)


def _new(_: argparse.Namespace) -> int:
    print(secrets.token_hex(PSEUDONYM_KEY_MIN_BYTES))
    print(
        "Set BRIDGE_PSEUDONYM_KEY to the line above in the environment of every web and worker process."
        " For a new deployment only: one that has run keeps its key (another key would lose every"
        " child's case; a release before BRIDGE_PSEUDONYM_KEY moves its key with"
        " `bridge pseudonym-key migrate`). " + _KEEP_IT,
        file=sys.stderr,
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    target = redis_target_from_environment(os.environ)
    try:
        old, fingerprinted = asyncio.run(_read(target))
    except (RedisError, OSError) as exc:
        print(f"bridge: cannot read the pseudonym key from Redis ({type(exc).__name__})", file=sys.stderr)
        return 1
    if old is None:
        print(
            "bridge: Redis ($REDIS_URL) holds no pseudonym key: "
            + (
                "it has moved to BRIDGE_PSEUDONYM_KEY already (Redis keeps only its fingerprint); the"
                " key is in the environment of the running processes"
                if fingerprinted
                else "no release has run against this Redis; make a key with `bridge pseudonym-key new`"
            ),
            file=sys.stderr,
        )
        return 1
    print(old.hex())
    print(
        "Set BRIDGE_PSEUDONYM_KEY to the line above (the key of this Redis's pseudonyms, in hex) in the"
        " environment of every web and worker process, then start this release. Its first worker"
        " checks it against the key in Redis, keeps only its fingerprint there and removes the key"
        " from Redis; every child keeps the same pseudonym. Workers of the older release still"
        " running go on with the same key; one that starts after the move fails at start instead"
        " of making a new key. " + _KEEP_IT,
        file=sys.stderr,
    )
    return 0


async def _read(target: RedisTarget) -> tuple[bytes | None, bool]:
    redis = open_redis(target, socket_timeout=10)
    try:
        keys = keys_for(redis)
        return await read_old_key(redis, keys), await has_fingerprint(redis, keys)
    finally:
        await redis.aclose()
