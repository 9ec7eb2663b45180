"""REDIS_URL and REDIS_CLUSTER -> one Redis server or a Redis Cluster; a URL that names neither is
refused at start (exit 2) with a line that says why and repeats no part of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from bridge.adapters.redis.connect import keys_for, open_redis
from bridge.adapters.redis.keys import CLUSTER_TAG, Keys
from bridge.config.redis_url import RedisTarget, RedisUrlError, cluster_flag, parse_redis_url
from bridge.config.settings import SettingsError, load_settings
from tests.start_up import GOOD

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "redis-pass-9f3e1c"  # distinctive, so a test can see it never shows


@pytest.mark.parametrize(
    ("url", "cluster", "target"),
    [
        ("redis://localhost:6379/0", False, RedisTarget("redis://localhost:6379/0")),
        ("rediss://:pw@redis.internal:6380/2", False, RedisTarget("rediss://:pw@redis.internal:6380/2")),
        ("unix:///run/redis.sock", False, RedisTarget("unix:///run/redis.sock")),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3",
            False,
            RedisTarget("redis://10.0.0.1:7000", (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379))),
        ),
        (
            "rediss+cluster://user:pw@[::1]:7000,h2:7001/0?ssl_cert_reqs=none",
            False,
            RedisTarget("rediss://user:pw@[::1]:7000/0?ssl_cert_reqs=none", (("::1", 7000), ("h2", 7001))),
        ),
        ("redis://10.0.0.1:7000", True, RedisTarget("redis://10.0.0.1:7000", (("10.0.0.1", 7000),))),
        ("REDIS+CLUSTER://h:7000", False, RedisTarget("redis://h:7000", (("h", 7000),))),
    ],
    ids=["server", "tls server", "socket", "cluster", "tls cluster", "REDIS_CLUSTER=1", "upper case"],
)
def test_a_url_names_one_server_or_a_cluster(url: str, cluster: bool, target: RedisTarget) -> None:
    assert parse_redis_url(url, cluster=cluster) == target


@pytest.mark.parametrize(
    ("url", "cluster", "reason"),
    [
        ("http://redis.internal:6379", False, "must start with redis://, rediss:// or unix://"),
        ("redis.internal:6379", False, "must start with redis://"),
        ("redis://h:port/0", False, "not a valid Redis URL"),
        ("redis://h:6379/zero", False, "not a valid Redis URL"),
        ("redis+cluster://h:7000,h:notaport", False, "cluster node that is not host:port"),
        ("redis+cluster://h:70000", False, "cluster node that is not host:port"),
        ("redis+cluster://h:7000,,h:7001", False, "cluster node that is not host:port"),
        ("redis+cluster://", False, "cluster node that is not host:port"),
        ("redis+cluster://h:7000/3", False, "database other than 0"),
        ("redis+cluster://h:7000/?db=3", False, "database other than 0"),
        ("redis://h:7000/1", True, "database other than 0"),
        ("unix:///run/redis.sock", True, "reached over TCP"),
    ],
)
def test_a_url_that_names_no_redis_is_refused_without_repeating_it(url: str, cluster: bool, reason: str) -> None:
    url = url.replace("://", f"://:{PASSWORD}@", 1) if "://" in url and not url.startswith("unix") else url
    with pytest.raises(RedisUrlError, match=reason) as refused:
        parse_redis_url(url, cluster=cluster)
    assert PASSWORD not in str(refused.value) and "notaport" not in str(refused.value)


@pytest.mark.parametrize(("value", "flag"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_redis_cluster_is_a_yes_or_no(value: str, flag: bool) -> None:
    assert cluster_flag(value) is flag


def test_redis_cluster_that_is_neither_is_refused() -> None:
    with pytest.raises(RedisUrlError, match="REDIS_CLUSTER must be 1"):
        cluster_flag("maybe")


def test_the_client_and_its_key_layout_follow_the_url() -> None:
    """Nothing connects: a client is made and its keys chosen from the target alone."""
    server = open_redis(parse_redis_url("redis://127.0.0.1:1/0"), socket_timeout=1)
    cluster = open_redis(parse_redis_url("redis+cluster://127.0.0.1:1,127.0.0.1:2"), socket_timeout=1)
    assert isinstance(server, Redis) and keys_for(server) == Keys()
    assert isinstance(cluster, RedisCluster) and keys_for(cluster) == Keys(slot_tag=CLUSTER_TAG)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [("127.0.0.1", 2), ("127.0.0.1", 1)]


def _settings(**env: str) -> dict[str, str]:
    """The good settings (tests/start_up.py) without their Redis URL, and these."""
    return {**{name: value for name, value in GOOD.items() if name != "REDIS_URL"}, **env}


def test_settings_say_where_redis_is() -> None:
    settings = load_settings(**_settings(REDIS_URL="redis://h:7000", REDIS_CLUSTER="1"))
    assert settings.redis_target == RedisTarget("redis://h:7000", (("h", 7000),))
    assert not load_settings(**_settings()).redis_target.is_cluster


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"REDIS_URL": f"redis+cluster://:{PASSWORD}@h:7000,h:x"},
            "REDIS_URL has a cluster node that is not host:port",
        ),
        ({"REDIS_URL": f"redis://:{PASSWORD}@h:7000/1", "REDIS_CLUSTER": "1"}, "REDIS_URL names a database other"),
        ({"REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER must be 1 (a Redis Cluster) or 0"),
    ],
)
def test_settings_refuse_a_bad_redis_by_name(env: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError, match=line.replace("(", r"\(").replace(")", r"\)")) as refused:
        load_settings(**_settings(**env))
    assert PASSWORD not in str(refused.value)


COMMANDS = {
    "worker": ["worker"],
    "serve": ["serve", "--port", "0"],
    "audit": ["audit"],
    "set-aside": ["set-aside", "list"],
    "purge": ["purge", "--case", "1", "--operator", "yamada", "--yes"],
    "pseudonym-key": ["pseudonym-key", "migrate"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_stops_on_a_bad_redis_url_with_exit_2(command: str) -> None:
    """The processes read REDIS_URL through their settings, the operator's commands from the
    environment: each stops with one line naming it, no traceback and no password, before any
    connection."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "SYSTEMROOT")},
        **_settings(REDIS_URL=f"redis+cluster://:{PASSWORD}@127.0.0.1:1,127.0.0.1:port"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", *COMMANDS[command]],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and PASSWORD not in output
    said = [line for line in result.stderr.splitlines() if line.startswith("bridge:")]
    assert len(said) == 1 and "REDIS_URL has a cluster node that is not host:port" in said[0], output
