"""The bridge on a Redis Cluster: what a cluster refuses or splits (scripts and transactions across
slots, pipelines, pub/sub, SCAN, the check at start) working on a real cluster of three masters
(conftest.py's redis_cluster). The relay, hours and controls tests run end to end on it too (their
[cluster] runs); the key layout itself is tested in test_key_layout.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError

from bridge.adapters.redis.codec import ChildLoad, encode_item
from bridge.adapters.redis.commit import Committed, Committer, Ops
from bridge.adapters.redis.connect import open_redis, subscriber
from bridge.adapters.redis.keys import CLUSTER_TAG, Keys
from bridge.adapters.redis.lanes import FollowUp
from bridge.adapters.redis.safety import UnsafeRedis, check_no_eviction
from bridge.adapters.redis.store import ChildRequest, Store, ThreadRequest
from bridge.config.redis_url import parse_redis_url
from bridge.core.ids import LineUserId, SlackUserId, ThreadTs
from bridge.core.rules.controls import Roster
from tests.redis_cluster import LocalCluster

CLUSTER_KEYS = Keys(slot_tag=CLUSTER_TAG)
SECRET = b"k" * 32
pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    """The bridge's own client of the cluster (made from REDIS_URL as the processes make it),
    every master emptied first."""
    emptying = redis_cluster.client()
    emptying.flushall()
    emptying.close()
    client = open_redis(parse_redis_url(redis_cluster.url), socket_timeout=5)
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


def a_commit(keys: Keys) -> Ops:
    """A commit that touches the three concerns, as a decision's does: a case, a delivery lane
    and the inbound stream."""
    ops = Ops()
    ops.field_is(keys.case(1), "v", None)
    ops.hset(keys.case(1), {"number": "1", "v": "1"})
    ops.enqueue(keys.lane("slack:1"), keys.due, "slack:1", encode_item("d1", {"kind": "x"}, int(time.time() * 1000)))
    ops.xappend(keys.audit, {"action": "test"})
    ops.arm(keys.timers, keys.fired_prefix + "t1", int(time.time() * 1000) + 60_000, "t1")
    return ops


async def test_a_commit_across_slots_is_refused_by_the_cluster_itself(
    cluster: RedisCluster, redis_cluster: LocalCluster
) -> None:
    """The cluster is real and checks slots: the commit script with one server's key names (three
    tags, three slots) is refused by a node with CROSSSLOT, and nothing is written; with the
    cluster's names the same script commits on the node that owns their slot."""
    server_keys = a_commit(Keys()).keys
    assert len({key_slot(key.encode()) for key in server_keys}) == 3
    owner = redis_cluster.client().get_node_from_key(CLUSTER_KEYS.inbound)  # type: ignore[no-untyped-call]
    node = Redis(port=int(owner.port))
    try:
        # CROSSSLOT, which redis-py raises as ClusterCrossSlotError (its text after the code).
        with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
            await Committer(node, wake_channel="br:wake").commit(a_commit(Keys()), now_ms=int(time.time() * 1000))
        assert await node.dbsize() == 0
        done, _ = await Committer(node, wake_channel="br:wake").commit(
            a_commit(CLUSTER_KEYS), now_ms=int(time.time() * 1000)
        )
        assert done is Committed.DONE
        assert await node.hget(CLUSTER_KEYS.case(1), "v") == b"1"
    finally:
        await node.aclose()


async def test_a_commit_wakes_the_deliverers_listening_on_any_node(
    cluster: RedisCluster, redis_cluster: LocalCluster
) -> None:
    """The wake-up a commit publishes from its script reaches a subscriber on every node (a
    PUBLISH goes to the whole cluster), the deliverers' ClusterPubSub among them."""
    store = Store(cluster)
    assert store.keys == CLUSTER_KEYS
    listeners = [Redis(port=port).pubsub() for port in redis_cluster.ports]
    deliverers = await subscriber(cluster)  # as Deliverers.listen_for_wakeups subscribes
    try:
        for pubsub in [*listeners, deliverers]:
            await pubsub.subscribe(CLUSTER_KEYS.wake_channel)
            assert (await pubsub.get_message(timeout=5) or {}).get("type") == "subscribe"
        assert await store.commit(a_commit(CLUSTER_KEYS)) is Committed.DONE
        for pubsub in [*listeners, deliverers]:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None and message["channel"] == CLUSTER_KEYS.wake_channel.encode()
    finally:
        for pubsub in [*listeners, deliverers]:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # (untyped in redis-py)
        for listener in listeners:
            await listener.connection_pool.disconnect()


async def test_the_lanes_claim_and_complete_on_the_cluster(cluster: RedisCluster) -> None:
    """The lane scripts derive the lane, lease and pause keys from a prefix: in one slot with the
    keys they are given, so the cluster runs them."""
    store = Store(cluster)
    assert await store.commit(a_commit(CLUSTER_KEYS)) is Committed.DONE
    (claim,) = await store.claim(token="w1", lease_ms=5000, max_lanes=4)
    assert claim.lane == "slack:1" and claim.item_id == "d1"
    assert await store.complete(claim, token="w1", followups=[FollowUp("line:c1", "d2", {"kind": "y"})])
    (next_claim,) = await store.claim(token="w1", lease_ms=5000, max_lanes=4)
    assert next_claim.lane == "line:c1"


async def test_transactions_pipelines_and_scans_run_on_the_cluster(cluster: RedisCluster) -> None:
    """WATCH/MULTI (the pseudonym key's check), MULTI (the roster, setting an entry aside), a
    pipeline of scripts (by their text: redis-py's cluster pipeline refuses EVALSHA) on nodes that
    have not seen them, and a SCAN of every master."""
    store = Store(cluster, child_key_secret=SECRET)
    await store.prepare()  # WATCH, MULTI; then SCANs for the upgrade steps
    await store.prepare()  # the fingerprint is there now: checked, nothing written
    await store.save_roster(["UCOUNSEL1", "UCOUNSEL2"], ["USUPER1"], at=1.0)
    members, supervisors = {SlackUserId("UCOUNSEL1"), SlackUserId("UCOUNSEL2")}, {SlackUserId("USUPER1")}
    roster = Roster(members=frozenset(members), group_supervisors=frozenset(supervisors))
    assert await store.roster() == roster

    await store.ensure_router_group()
    assert await store.record_events("line", [("e1", "{}"), ("e1", "{}")]) == 1
    response: Any = await cluster.xreadgroup("router", "r1", {CLUSTER_KEYS.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    await store.set_aside(entry_id.decode(), fields, why="test")
    assert await cluster.xlen(CLUSTER_KEYS.inbound) == 0 and await cluster.xlen(CLUSTER_KEYS.set_aside) == 1

    await cluster.script_flush()  # every primary: the scripts must be loaded again
    child = LineUserId("U" + "0" * 31 + "1")
    loads = await store.load_many([ThreadRequest(ThreadTs("1.2")), ChildRequest(child, now=time.time(), window_s=60)])
    assert loads[0] is None and isinstance(loads[1], ChildLoad) and loads[1].open_case is None

    for number in (3, 5):
        await cluster.hset(CLUSTER_KEYS.case(number), mapping={"number": str(number), "child_key": "c1"})
    await cluster.hset(CLUSTER_KEYS.case(4), mapping={"number": "4", "child_key": "c2"})
    assert await store.case_numbers_of_child("c1") == [3, 5]


async def test_eviction_allowed_on_any_one_node_is_refused(cluster: RedisCluster, redis_cluster: LocalCluster) -> None:
    """The check at start asks every node, not the one the client happens to ask first."""
    await check_no_eviction(cluster)
    for port in redis_cluster.ports:
        node = redis_cluster.node(port)
        node.config_set("maxmemory-policy", "allkeys-lru")
        try:
            with pytest.raises(UnsafeRedis, match=f"allkeys-lru on node 127.0.0.1:{port}.*on every node"):
                await check_no_eviction(cluster)
        finally:
            node.config_set("maxmemory-policy", "noeviction")
            node.close()
