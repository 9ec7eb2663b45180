"""What is set aside for an operator, end to end: the Procfile's processes against a real Redis,
the fakes and signed HTTP, and `bridge set-aside` run as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from redis.asyncio import Redis as AsyncRedis

from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.partitions import partition_of
from bridge.adapters.redis.store import Store
from bridge.fakes.harness import ROOT
from tests.conftest import HEARTBEATS, LINE_USER_ID, Bridge, line_text_event, line_user_id, run_cli
from tests.test_relay_e2e import CHILD, bot_thread, open_case, roots, wait_thread

pytestmark = pytest.mark.redis

KEYS = Keys()
POST = "/api/chat.postMessage"
DAY_MS = 86400 * 1000


def test_the_worker_drops_what_was_set_aside_longer_than_the_policy_keeps_it(bridge_factory: Any) -> None:
    """Set aside 15 days ago goes (the shipped policy keeps 14); set aside 13 days ago stays."""
    bridge: Bridge = bridge_factory(worker=0)
    now_ms = int(time.time() * 1000)
    for stream in (KEYS.set_aside, KEYS.deliveries_set_aside):
        bridge.redis.xadd(stream, {"entry": "old"}, id=f"{now_ms - 15 * DAY_MS}-0")
        bridge.redis.xadd(stream, {"entry": "recent"}, id=f"{now_ms - 13 * DAY_MS}-0")
    bridge.start("worker")  # its router sweeps as it starts leading, then every minute

    def entries(stream: str) -> list[bytes]:
        found: Any = bridge.redis.xrange(stream)
        return [fields[b"entry"] for _, fields in found]

    bridge.fake_slack.wait_for(
        lambda: len(entries(KEYS.set_aside)) == len(entries(KEYS.deliveries_set_aside)) == 1, timeout=10
    )
    assert entries(KEYS.set_aside) == entries(KEYS.deliveries_set_aside) == [b"recent"]


def set_aside_command(bridge: Bridge, *args: str, operator: str | None = "yamada") -> subprocess.CompletedProcess[str]:
    """`bridge set-aside ...` as an operator runs it, against the bridge's Redis and policy (with
    the worker's pseudonym key, so a LINE event's case can be found)."""
    env = {
        "REDIS_URL": bridge.env["REDIS_URL"],
        "BRIDGE_CONFIG": bridge.env["BRIDGE_CONFIG"],
        "BRIDGE_PSEUDONYM_KEY": bridge.env["BRIDGE_PSEUDONYM_KEY"],
    }
    extra = ["--operator", operator] if operator is not None and args[0] != "list" else []
    return run_cli("set-aside", *args, *extra, env=env)


def audit_lines(bridge: Bridge) -> list[str]:
    env = {"REDIS_URL": bridge.env["REDIS_URL"], "BRIDGE_CONFIG": bridge.env["BRIDGE_CONFIG"]}
    printed = run_cli("audit", env=env)
    printed.check_returncode()
    return [line for line in printed.stdout.splitlines() if "set-aside" in line]


def aside_ids(bridge: Bridge, stream: str) -> list[str]:
    found: Any = bridge.redis.xrange(stream)
    return [entry_id.decode() for entry_id, _ in found]


def everything(bridge: Bridge) -> dict[Any, Any]:
    """Every key with its value, to show that a refused command changed nothing (the workers'
    heartbeats, which change every second, left out)."""
    state: dict[Any, Any] = {}
    keys: Any = bridge.redis.keys("*")
    for key in set(keys) - HEARTBEATS:
        kind = bridge.redis.type(key)
        state[key] = bridge.redis.dump(key) if kind != b"stream" else bridge.redis.xrange(key)
    return state


def refuse_the_next_post(bridge: Bridge) -> None:
    """Slack refuses the next chat.postMessage outright (not an error worth retrying)."""
    bridge.fake_slack.fail_next(POST, 200, body={"ok": False, "error": "msg_too_long"})


def a_refused_childs_message(bridge: Bridge, text: str) -> tuple[str, str]:
    """A case opened, then a child's message Slack refuses outright: set aside. Returns the
    case's root ts and the set-aside entry's id."""
    root_ts = open_case(bridge)
    refuse_the_next_post(bridge)
    bridge.line_events(line_text_event(CHILD, text))
    bridge.fake_slack.wait_for(lambda: len(aside_ids(bridge, KEYS.deliveries_set_aside)) == 1)
    (entry_id,) = aside_ids(bridge, KEYS.deliveries_set_aside)
    return root_ts, entry_id


def test_a_childs_message_slack_refused_is_listed_without_words_and_replayed_once(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory()
    root_ts, entry_id = a_refused_childs_message(bridge, "ないしょのはなし")
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして"]  # refused, not posted

    listed = set_aside_command(bridge, "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert f"delivery  {entry_id}" in line and "#1" in line and "thread_post (child)" in line
    assert "why: Slack refused: msg_too_long" in line
    assert "ないしょ" not in listed.stdout and not LINE_USER_ID.search(listed.stdout + listed.stderr)
    assert "1 entry set aside; each is dropped 14 days after it was set aside" in listed.stderr
    shown = set_aside_command(bridge, "list", "--show-words")
    assert shown.stdout.splitlines() == [line, "    ないしょのはなし"]
    assert not LINE_USER_ID.search(shown.stdout)

    replayed = set_aside_command(bridge, "replay", entry_id)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == [f"replayed delivery {entry_id}"]
    wait_thread(bridge, 2)
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして", "ないしょのはなし"]  # once
    assert aside_ids(bridge, KEYS.deliveries_set_aside) == []
    (record,) = audit_lines(bridge)
    assert "#1" in record and "set-aside:replay" in record and "yamada" in record and entry_id in record
    assert "ないしょ" not in record

    again = set_aside_command(bridge, "replay", entry_id)  # it is gone: nothing to do twice
    assert again.returncode == 1 and f"no set-aside entry {entry_id}" in again.stderr
    assert len(audit_lines(bridge)) == 1


def test_a_dropped_entry_is_gone_for_good_and_on_the_record(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory()
    root_ts, entry_id = a_refused_childs_message(bridge, "けしてほしい")
    dropped = set_aside_command(bridge, "drop", f"delivery:{entry_id}")
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.splitlines() == [f"dropped delivery {entry_id}"]
    assert aside_ids(bridge, KEYS.deliveries_set_aside) == []
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして"]
    (record,) = audit_lines(bridge)
    assert "#1" in record and "set-aside:drop" in record and "yamada" in record and entry_id in record


def test_an_event_the_router_set_aside_is_decided_when_replayed(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0)
    assert bridge.line_events(line_text_event(CHILD, "もういちど")).status_code == 200
    recorded: Any = bridge.redis.xrange(KEYS.inbound)
    ((entry_id, fields),) = recorded

    async def as_the_router_does() -> None:  # the router's own step for an entry it cannot decide
        redis = AsyncRedis.from_url(bridge.env["REDIS_URL"])
        store = Store(redis)
        await store.ensure_router_group()
        await store.set_aside(entry_id.decode(), fields, why="could not be decided: KeyError")
        await redis.aclose()

    asyncio.run(as_the_router_does())
    bridge.start("worker")
    bridge.wait_settled()
    assert roots(bridge) == []  # set aside: nothing decided
    (aside_id,) = aside_ids(bridge, KEYS.set_aside)

    listed = set_aside_command(bridge, "list")
    (line,) = listed.stdout.splitlines()
    assert f"inbound   {aside_id}" in line and "LINE message" in line and "why: could not be decided: KeyError" in line
    assert "もういちど" not in listed.stdout and not LINE_USER_ID.search(listed.stdout)

    replayed = set_aside_command(bridge, "replay", aside_id)
    assert replayed.returncode == 0, replayed.stderr
    root_ts, _ = wait_thread(bridge, 1)
    bridge.wait_settled()
    assert len(roots(bridge)) == 1 and bot_thread(bridge, root_ts) == ["もういちど"]
    assert aside_ids(bridge, KEYS.set_aside) == []
    (record,) = audit_lines(bridge)
    assert "set-aside:replay" in record and f"inbound {aside_id}" in record


def test_an_event_set_aside_from_a_partition_is_replayed_into_it(bridge_factory: Any) -> None:
    """With partitions, the replayed event goes back to its child's partition, where it is decided
    in order with the child's other events."""
    child = next(line_user_id(n) for n in range(100, 200) if partition_of(line_user_id(n), 4) == 3)
    bridge: Bridge = bridge_factory(worker=0, BRIDGE_ROUTER_PARTITIONS="4")
    assert bridge.line_events(line_text_event(child, "もういちど")).status_code == 200
    recorded: Any = bridge.redis.xrange(KEYS.inbound_of(3))
    ((entry_id, fields),) = recorded

    async def as_the_router_does() -> None:
        redis = AsyncRedis.from_url(bridge.env["REDIS_URL"])
        store = Store(redis, partitions=4)
        await store.ensure_router_group()
        await store.set_aside(entry_id.decode(), fields, why="could not be decided: KeyError", partition=3)
        await redis.aclose()

    asyncio.run(as_the_router_does())
    (aside_id,) = aside_ids(bridge, KEYS.set_aside)
    bridge.start("worker")
    replayed = set_aside_command(bridge, "replay", aside_id)
    assert replayed.returncode == 0, replayed.stderr
    root_ts, _ = wait_thread(bridge, 1)
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["もういちど"]
    info: Any = bridge.redis.xinfo_stream(KEYS.inbound_of(3))
    assert info["entries-added"] == 2  # recorded there, and replayed there


def test_a_set_aside_line_event_is_listed_with_its_childs_open_case(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory()
    open_case(bridge)
    bridge.wait_settled()
    for process in bridge.processes:  # no router: the next entry stays for the test to set aside
        if process.name == "worker":
            process.stop()
    assert bridge.line_events(line_text_event(CHILD, "つづき")).status_code == 200
    recorded: Any = bridge.redis.xrange(KEYS.inbound)
    ((entry_id, fields),) = recorded

    async def as_the_router_does() -> None:
        redis = AsyncRedis.from_url(bridge.env["REDIS_URL"])
        await Store(redis).set_aside(entry_id.decode(), fields, why="could not be decided: KeyError")
        await redis.aclose()

    asyncio.run(as_the_router_does())
    (line,) = set_aside_command(bridge, "list").stdout.splitlines()
    assert "LINE message" in line and "#1" in line
    without_key = {**bridge.env, "BRIDGE_PSEUDONYM_KEY": ""}
    (line,) = set_aside_command(Bridge(**{**bridge.__dict__, "env": without_key}), "list").stdout.splitlines()
    assert "LINE message" in line and "#1" not in line  # the case is found only with the key


@pytest.mark.parametrize(
    ("ids", "code", "message"),
    [
        (["1-0"], 1, "no set-aside entry 1-0"),
        (["ENTRY", "1-0"], 1, "no set-aside entry 1-0"),  # one unknown among several: none is touched
        (["ENTRY", "nonsense"], 2, "'nonsense' is not a set-aside entry id"),
        (["inbound:ENTRY"], 1, "no set-aside entry inbound:"),  # in the other stream
        (["lanes:ENTRY"], 2, "is not a set-aside entry id"),
    ],
)
def test_an_unknown_or_malformed_id_changes_nothing(
    bridge_factory: Any, ids: list[str], code: int, message: str
) -> None:
    bridge: Bridge = bridge_factory()
    open_case(bridge)
    refuse_the_next_post(bridge)
    bridge.line_events(line_text_event(CHILD, "のこしておいて"))
    bridge.fake_slack.wait_for(lambda: len(aside_ids(bridge, KEYS.deliveries_set_aside)) == 1)
    bridge.wait_settled()
    (entry_id,) = aside_ids(bridge, KEYS.deliveries_set_aside)
    before = everything(bridge)
    for action in ("replay", "drop"):
        refused = set_aside_command(bridge, action, *(name.replace("ENTRY", entry_id) for name in ids))
        assert refused.returncode == code and message in refused.stderr and "nothing changed" in refused.stderr
        assert refused.stdout == ""
    assert everything(bridge) == before


def test_replay_and_drop_say_who_runs_them(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0)
    bridge.redis.xadd(KEYS.deliveries_set_aside, {"lane": "slack:1", "item": "x|{}"}, id="5-0")
    env_without_user = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME")}
    for operator, expected in ((None, "--operator NAME"), ("", "--operator NAME"), ("a\x1b[2Jb", "no control")):
        printed = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "set-aside", "drop", "5-0"]
            + ([] if operator is None else ["--operator", operator]),
            env={
                **env_without_user,
                "REDIS_URL": bridge.env["REDIS_URL"],
                "BRIDGE_CONFIG": bridge.env["BRIDGE_CONFIG"],
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert printed.returncode == 2 and expected in printed.stderr
    assert aside_ids(bridge, KEYS.deliveries_set_aside) == ["5-0"]
