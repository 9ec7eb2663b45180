"""End to end: the pseudonym key of the Procfile's processes and `bridge pseudonym-key`, against a
real Redis and the fakes. An older release's key moves from Redis to BRIDGE_PSEUDONYM_KEY and the
child is still known; a worker with another key does not start; workers starting at once do."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
import redis as redis_sync

from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.pseudonym import fingerprint
from bridge.config.settings import pseudonym_key_bytes
from bridge.fakes.server import time_scale
from tests.conftest import CHANNEL, HEARTBEATS, PSEUDONYM_KEY, ROOT, Bridge, RedisServer, line_text_event, line_user_id

pytestmark = pytest.mark.redis

KEYS = Keys()
CHILD = line_user_id(1)


def pseudonym_key_command(action: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "SYSTEMROOT")},
        "REDIS_URL": redis_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "pseudonym-key", action],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused_worker(bridge: Bridge, key: str) -> str:
    """Start a worker with key, which must stop at start; its log."""
    bridge.env = {**bridge.env, "BRIDGE_PSEUDONYM_KEY": key}
    process = bridge.launch("worker")
    code = process.popen.wait(30 * time_scale())
    log = process.log()
    assert code != 0, log
    assert "worker started" not in log
    return log


def everything(redis_db: redis_sync.Redis) -> dict[bytes, Any]:
    """Every key with its value (the workers' heartbeats, which change every second, left out)."""
    return {key: redis_db.dump(key) for key in redis_db.scan_iter() if key not in HEARTBEATS}


def test_an_older_releases_key_moves_to_the_environment_and_the_child_is_still_known(
    bridge_factory: Any, redis_db: redis_sync.Redis, redis_server: RedisServer
) -> None:
    # What an older release left: its key, made at random and kept in Redis, and a child whose
    # history (case #7) is kept under the pseudonym that key derived.
    old = secrets.token_hex(32)
    redis_db.set(KEYS.pseudonym_key, old)
    pseudonym = hmac.new(old.encode(), CHILD.encode(), hashlib.sha256).hexdigest()[:32]
    redis_db.set(KEYS.case_seq, 7)
    redis_db.rpush(KEYS.history(pseudonym), 7)
    before = everything(redis_db)

    moved = pseudonym_key_command("migrate", redis_server.url)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.count("\n") == 1  # the key alone on its line: `> file` keeps only it
    printed = moved.stdout.strip()
    assert pseudonym_key_bytes(printed) == old.encode()
    assert "BRIDGE_PSEUDONYM_KEY" in moved.stderr and printed not in moved.stderr
    assert everything(redis_db) == before  # printing changes nothing

    bridge: Bridge = bridge_factory(web=1, worker=0)
    # Any other key is refused, the old key's text (read as hex) among them; nothing changes.
    for wrong in (PSEUDONYM_KEY, old):
        log = refused_worker(bridge, wrong)
        assert "run `bridge pseudonym-key migrate`" in log
        assert wrong not in log and old not in log
    assert everything(redis_db) == before

    bridge.env = {**bridge.env, "BRIDGE_PSEUDONYM_KEY": printed}
    worker = bridge.start("worker")
    assert bridge.line_events(line_text_event(CHILD, "また来ました")).status_code == 200
    bridge.fake_slack.wait_for(lambda: bool(bridge.fake_slack.roots(CHANNEL)))
    root = bridge.fake_slack.roots(CHANNEL)[0]["text"]
    assert "#8" in root and "#7" in root  # the same pseudonym: the child's earlier case is found
    assert redis_db.hget(KEYS.open_by_child, pseudonym) == b"8"
    # Redis no longer holds the key: a marker in its place, and the fingerprint.
    assert redis_db.type(KEYS.pseudonym_key) == b"hash"
    assert redis_db.get(KEYS.pseudonym_fingerprint) == fingerprint(old.encode()).encode()
    assert old.encode() not in b"".join(v for v in everything(redis_db).values() if v)
    for process in bridge.processes:
        assert printed not in process.log() and old not in process.log()
    again = pseudonym_key_command("migrate", redis_server.url)
    assert again.returncode == 1 and again.stdout == ""
    assert "moved to BRIDGE_PSEUDONYM_KEY already" in again.stderr

    # A restart with the key is an ordinary start.
    worker.stop()
    bridge.start("worker")


def test_a_worker_with_another_key_than_the_deployments_does_not_start(
    bridge_factory: Any, redis_db: redis_sync.Redis
) -> None:
    bridge: Bridge = bridge_factory(web=1, worker=1)  # the deployment's key, fingerprinted
    bridge.processes[1].stop()  # so that what follows is all the refused worker could change
    before = everything(redis_db)
    other = secrets.token_hex(32)
    log = refused_worker(bridge, other)
    assert "BRIDGE_PSEUDONYM_KEY is not the key this Redis's pseudonyms were made with" in log
    assert other not in log
    assert everything(redis_db) == before


@pytest.mark.parametrize("key", ["ab" * 31, "not hex, not base64"])
def test_a_worker_with_a_key_too_short_or_unreadable_does_not_start(bridge_factory: Any, key: str) -> None:
    bridge: Bridge = bridge_factory(web=0, worker=0)
    log = refused_worker(bridge, key)
    assert "BRIDGE_PSEUDONYM_KEY is" in log and "bridge pseudonym-key new" in log
    assert key not in log


def test_workers_starting_at_once_with_the_same_key_all_start(bridge_factory: Any, redis_db: redis_sync.Redis) -> None:
    assert not redis_db.exists(KEYS.pseudonym_fingerprint)  # a new Redis
    bridge: Bridge = bridge_factory(web=1, worker=3)  # launched together, then waited for
    assert [p.name for p in bridge.processes if p.popen.poll() is None] == ["web", "worker", "worker", "worker"]
    assert redis_db.get(KEYS.pseudonym_fingerprint) == fingerprint(pseudonym_key_bytes(PSEUDONYM_KEY)).encode()


def test_migrate_on_a_new_redis_points_to_new(redis_db: redis_sync.Redis, redis_server: RedisServer) -> None:
    result = pseudonym_key_command("migrate", redis_server.url)
    assert result.returncode == 1 and result.stdout == ""
    assert "bridge pseudonym-key new" in result.stderr
    assert not list(redis_db.scan_iter())


def test_new_prints_a_fresh_key_the_setting_takes() -> None:
    first, second = (pseudonym_key_command("new", "redis://127.0.0.1:1/0") for _ in range(2))
    assert first.returncode == second.returncode == 0
    assert len(pseudonym_key_bytes(first.stdout.strip())) == 32
    assert first.stdout != second.stdout
    assert "BRIDGE_PSEUDONYM_KEY" in first.stderr
