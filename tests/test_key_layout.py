"""The key layout: on one Redis server the names deployments have always had, on a Redis Cluster
every key in one slot (keys.py)."""

from __future__ import annotations

import inspect

from redis.crc import key_slot

from bridge.adapters.redis.keys import CLUSTER_TAG, Keys

CLUSTER_KEYS = Keys(slot_tag=CLUSTER_TAG)


def every_key(keys: Keys) -> dict[str, str]:
    """Every key name Keys gives (a method called with sample arguments), by attribute: a key added
    to Keys is checked here without being listed. The wake channel is a channel, not a key."""
    names = {}
    for attribute in dir(Keys):
        if attribute.startswith("_") or attribute in ("prefix", "slot_tag", "wake_channel"):
            continue
        value = getattr(keys, attribute)
        if callable(value):
            parameters = inspect.signature(value).parameters.values()
            value = value(*(12 if p.annotation in (int, "int") else "x" for p in parameters))
        assert isinstance(value, str), attribute
        names[attribute] = value
    return names


def test_on_a_cluster_every_key_is_in_one_slot() -> None:
    names = every_key(CLUSTER_KEYS)
    assert len(names) > 30
    # The names scripts derive from a prefix (a lane, its lease, a platform's pause, a case) too.
    derived = [CLUSTER_KEYS.lanes_prefix + "lease:slack:1", CLUSTER_KEYS.cases_prefix + "case:7"]
    assert {key_slot(name.encode()) for name in [*names.values(), *derived]} == {key_slot(b"{all}")}
    assert all(name.startswith("br:{all}:") for name in names.values())


def test_on_one_server_the_keys_keep_the_names_they_always_had() -> None:
    """Existing deployments' data is found where it was written: the three tags, unchanged."""
    keys = Keys()
    assert (keys.inbound, keys.seen("line", "e1"), keys.timers, keys.router_lease) == (
        "br:{in}:events",
        "br:{in}:seen:line:e1",
        "br:{in}:timers",
        "br:{in}:router-lease",
    )
    assert (keys.case(12), keys.open_by_child, keys.by_thread, keys.audit, keys.pseudonym_fingerprint) == (
        "br:{cases}:case:12",
        "br:{cases}:open-by-child",
        "br:{cases}:by-thread",
        "br:{cases}:audit",
        "br:{cases}:pseudonym-key-fingerprint",
    )
    assert (keys.lane("slack:12"), keys.due, keys.lane_threads, keys.deliveries_set_aside) == (
        "br:{dq}:lane:slack:12",
        "br:{dq}:due",
        "br:{dq}:lane-threads",
        "br:{dq}:set-aside",
    )
    # Partition 0 keeps the stream's and the lease's names; the others follow them.
    assert (keys.inbound_of(0), keys.router_lease_of(0)) == (keys.inbound, keys.router_lease)
    assert (keys.inbound_of(3), keys.router_lease_of(3), keys.partition_count) == (
        "br:{in}:events:3",
        "br:{in}:router-lease:3",
        "br:{in}:partitions",
    )
    assert keys.wake_channel == CLUSTER_KEYS.wake_channel == "br:wake"
    server, cluster = every_key(keys), every_key(CLUSTER_KEYS)
    for attribute, name in server.items():  # the same names, one tag instead of three
        concern = name.split("{")[1].split("}")[0]
        assert cluster[attribute] == name.replace(f"{{{concern}}}", f"{{all}}:{concern}"), attribute
