"""Every Redis key the bridge uses, named here and nowhere else, with its hash tag.

Slot layout. On one Redis server (Keys()): three hash tags, by concern, as the keys have always
been named. On a Redis Cluster (Keys(slot_tag=CLUSTER_TAG), which adapters/redis/connect.py picks
for a cluster client): one hash tag for every key, ``br:{all}:in:events``,
``br:{all}:cases:case:12``, ``br:{all}:dq:lane:slack:12``, so every key is in one slot. That one
slot is what lets every atomic step stay one step on a cluster: the commit of a decision
(commit.py) and the recording of a case's thread touch all three concerns (state, lanes and the
inbound entry at once), and scripts derive some key names from a prefix that carries the tag (as
BullMQ does) instead of passing them in KEYS, which a cluster allows only within the script's own
slot. The price is that one master holds the bridge's data and takes its load. The inbound
stream's partitions (partitions.py) share that slot too, and on one server the {in} tag: a
partition's commit writes the case state, the lanes and its own stream's acknowledgement in one
step, so a hash tag of its own per partition would split that step. Partitions spread the
deciding over workers (the CPU), not the data over masters. The two layouts name different keys:
moving a deployment from one server to a cluster would need its keys renamed on the way (no tool
does that yet); each layout finds everything its own deployment wrote.

The concerns (a server's tags; on a cluster, the name after ``{all}:``):

- ``{in}``    the inbound streams of verified webhook events (one per partition:
              ``events``, ``events:1``, …), their de-duplication markers, the partition
              count, the routers' leases (one per partition) and the workers' heartbeats;
- ``{cases}`` the case registry: the number sequence, each case's hash, and the
              lookups by child and by Slack thread;
- ``{dq}``    the delivery lanes (ordered per case towards Slack, per child towards
              LINE), their due times, leases, attempt counters, platform pauses (after a 429),
              the workers' heartbeats (for the leases) and the Slack channels' token buckets.

A child's words live in Redis only while in transit: a processed stream entry is
deleted, a delivered item is popped from its lane.

Renamed keys and fields (stored data written before the rename is still read):

- messages deferred during a flood's cool-down were "held": the list ``{cases}:held:<n>`` is
  now ``{cases}:deferred:<n>`` and the case field ``held_stickers`` is now ``deferred_stickers``.
  A cool-down in progress across the upgrade keeps what it deferred: the flood's release reads
  both names (the old first) and deletes both. Nothing writes the old names any more; a
  cool-down lasts at most a day, so the old names can go a day after every deployment upgraded.
- a case's Slack thread was named by its timestamp alone, in the lookup by thread
  (``{cases}:by-thread``: thread -> case number) and in the lanes' threads
  (``{dq}:lane-threads``: lane -> thread). A timestamp is unique only within its channel, so a case
  in a pool of case channels (bridge/core/channels.py; its case hash has a ``channel`` field) is
  named ``<channel>:<ts>`` in both (thread_field). A case without the field (opened before pools,
  or with no pool: SLACK_CHANNEL_ID) keeps the bare ts, so without a pool nothing is written
  differently; with one, SLACK_CHANNEL_ID's threads are looked for by both names (thread_fields).
  Nothing is renamed in place and both names stay readable for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "br"
# The one hash tag of every key on a Redis Cluster (see above).
CLUSTER_TAG = "all"

# A case's count of deferred stickers, as the field was named before the rename (see above).
DEFERRED_STICKERS_BEFORE_RENAME = "held_stickers"


def thread_field(thread_ts: str, channel: str | None = None) -> str:
    """A case thread's name in by_thread and lane_threads (see above): "<channel>:<ts>" for a case
    in a pool's channel, the bare ts for one that names no channel (SLACK_CHANNEL_ID)."""
    return thread_ts if channel is None else f"{channel}:{thread_ts}"


def thread_of_field(field: str) -> tuple[str | None, str]:
    """Inverse of thread_field: (channel or None, ts). A ts has no colon; a channel ID neither."""
    channel, _, thread_ts = field.rpartition(":")
    return channel or None, thread_ts


def thread_fields(thread_ts: str, channel: str | None, pool: Sequence[str]) -> tuple[str, ...]:
    """Where the case of a thread in this channel is looked for, in order: with no pool (fewer than
    two channels) the bare ts, as always (the core checks the channel); with a pool, none outside
    it, "<channel>:<ts>" in it, and for its first channel (SLACK_CHANNEL_ID) then the bare ts too
    (a case opened there before the pool). channel None: an event recorded before events carried
    one, looked for by the bare ts."""
    if len(pool) < 2 or channel is None:
        return (thread_ts,)
    if channel not in pool:
        return ()
    named = thread_field(thread_ts, channel)
    return (named, thread_ts) if channel == pool[0] else (named,)


@dataclass(frozen=True)
class Keys:
    """Every Redis key name the bridge uses.

    slot_tag None: a hash tag per concern, ``br:{in}:…``, ``br:{cases}:…``, ``br:{dq}:…`` (one
    server). A tag: that one tag for every key, the concern after it, ``br:{all}:in:…`` (a
    cluster)."""

    prefix: str = PREFIX
    slot_tag: str | None = None

    def _concern(self, concern: str) -> str:
        """The start of every key of a concern (in, cases, dq), up to and without the next colon."""
        if self.slot_tag is None:
            return f"{self.prefix}:{{{concern}}}"
        return f"{self.prefix}:{{{self.slot_tag}}}:{concern}"

    # {in}: inbound events
    @property
    def inbound(self) -> str:
        """The inbound stream of partition 0 (the only one of a deployment with one partition)."""
        return f"{self._concern('in')}:events"

    def inbound_of(self, partition: int) -> str:
        """The inbound stream of a partition (partitions.py); partition 0's is ``inbound``, the
        name the one stream had before there were partitions."""
        return self.inbound if partition == 0 else f"{self.inbound}:{partition}"

    @property
    def partition_count(self) -> str:
        """How many partitions the deployment's inbound stream has: recorded by the first process
        that starts, refused to any process configured otherwise (partitions.py)."""
        return f"{self._concern('in')}:partitions"

    def seen(self, source: str, event_id: str) -> str:
        return f"{self._concern('in')}:seen:{source}:{event_id}"

    @property
    def set_aside(self) -> str:
        return f"{self._concern('in')}:set-aside"

    @property
    def timers(self) -> str:
        return f"{self._concern('in')}:timers"

    @property
    def fired_prefix(self) -> str:
        return f"{self._concern('in')}:fired:"

    @property
    def router_lease(self) -> str:
        """The router lease of partition 0 (the only one of a deployment with one partition)."""
        return f"{self._concern('in')}:router-lease"

    def router_lease_of(self, partition: int) -> str:
        """Which worker routes a partition's stream."""
        return self.router_lease if partition == 0 else f"{self.router_lease}:{partition}"

    @property
    def router_workers(self) -> str:
        """Worker name -> the time (ms) of its last heartbeat, for the router lease's script
        (the same as ``workers``, under this tag; heartbeat.py)."""
        return f"{self._concern('in')}:workers"

    # {cases}: the case registry
    @property
    def cases_prefix(self) -> str:
        return f"{self._concern('cases')}:"

    @property
    def case_seq(self) -> str:
        return f"{self.cases_prefix}seq"

    def case(self, number: int) -> str:
        return f"{self.cases_prefix}case:{number}"

    @property
    def case_pattern(self) -> str:
        """Every case's key, for a SCAN (a child's cases, when they are erased on request)."""
        return f"{self.cases_prefix}case:*"

    @property
    def open_by_child(self) -> str:
        return f"{self.cases_prefix}open-by-child"

    @property
    def by_thread(self) -> str:
        return f"{self.cases_prefix}by-thread"

    @property
    def unanswered(self) -> str:
        """Open cases no counsellor has answered yet, scored by number: the waiting order."""
        return f"{self.cases_prefix}unanswered"

    @property
    def closed_arrivals(self) -> str:
        return f"{self.cases_prefix}closed-arrivals"

    def closed_notice(self, child_key: str) -> str:
        return f"{self.cases_prefix}closed-notice:{child_key}"

    @property
    def closed_index(self) -> str:
        """Closed cases that still hold the child's LINE user ID, scored by when they closed."""
        return f"{self.cases_prefix}closed-with-id"

    @property
    def closed_cases(self) -> str:
        """Closed cases whose record is kept, scored by when they closed (the record goes after
        the retention policy's case_record_days)."""
        return f"{self.cases_prefix}closed"

    @property
    def blocked(self) -> str:
        """Blocked children: pseudonymous child key -> the block (case, by, at, reason)."""
        return f"{self.cases_prefix}blocked"

    def history(self, child_key: str) -> str:
        """A child's latest case numbers, oldest first (the root of a new case names them)."""
        return f"{self.cases_prefix}history:{child_key}"

    def recent(self, number: int, kind: str) -> str:
        """A case's messages (kind "all") or stickers within the flood window, by time."""
        return f"{self.cases_prefix}recent-{kind}:{number}"

    def deferred(self, number: int) -> str:
        """A case's messages deferred until its flood's cool-down ends (texts only: stickers are
        counted in the case's field ``deferred_stickers``)."""
        return f"{self.cases_prefix}deferred:{number}"

    def deferred_before_rename(self, number: int) -> str:
        """The same list as written before the rename (see above): read and deleted, never written."""
        return f"{self.cases_prefix}held:{number}"

    @property
    def audit(self) -> str:
        return f"{self.cases_prefix}audit"

    @property
    def roster_members(self) -> str:
        return f"{self.cases_prefix}roster:members"

    def roster_members_of(self, channel: str) -> str:
        """The members of another channel of a pool of case channels (roster_members holds
        SLACK_CHANNEL_ID's): who may use the controls is everyone in any of them."""
        return f"{self.cases_prefix}roster:members:{channel}"

    @property
    def roster_supervisors(self) -> str:
        return f"{self.cases_prefix}roster:supervisors"

    @property
    def roster_at(self) -> str:
        return f"{self.cases_prefix}roster:at"

    # {dq}: delivery lanes
    @property
    def lanes_prefix(self) -> str:
        return f"{self._concern('dq')}:"

    def lane(self, name: str) -> str:
        return f"{self.lanes_prefix}lane:{name}"

    @property
    def due(self) -> str:
        return f"{self.lanes_prefix}due"

    @property
    def attempts(self) -> str:
        return f"{self.lanes_prefix}attempts"

    @property
    def lane_threads(self) -> str:
        """Lane -> the Slack thread its deliveries post into (written when a case's root is posted)."""
        return f"{self.lanes_prefix}lane-threads"

    @property
    def workers(self) -> str:
        """Worker name -> the time (ms) of its last heartbeat: who is alive. The lane scripts
        find it from the lanes' prefix (heartbeat.py)."""
        return f"{self.lanes_prefix}workers"

    def platform_pause(self, platform: str) -> str:
        return f"{self.lanes_prefix}pause:{platform}"

    def channel_bucket(self, channel: str) -> str:
        """A Slack channel's token bucket: when its next post may go (buckets.py; the lane
        scripts find it from the lanes' prefix)."""
        return f"{self.lanes_prefix}bucket:{channel}"

    def lane_slot(self, lane: str) -> str:
        """The instant a lane waiting for its channel's bucket has reserved (buckets.py)."""
        return f"{self.lanes_prefix}slot:{lane}"

    @property
    def deliveries_set_aside(self) -> str:
        return f"{self.lanes_prefix}set-aside"

    @property
    def pseudonym_key(self) -> str:
        """Where releases before BRIDGE_PSEUDONYM_KEY kept the pseudonyms' key itself. Read once,
        when a deployment moves it to the environment; then a marker (a hash) in its place, so
        that an older release refuses to start instead of making a new key (see pseudonym.py)."""
        return f"{self.cases_prefix}pseudonym-key"

    @property
    def pseudonym_fingerprint(self) -> str:
        """The fingerprint of the pseudonyms' key (an HMAC of a fixed text, which does not give the
        key away): every process checks its BRIDGE_PSEUDONYM_KEY against it at start."""
        return f"{self.cases_prefix}pseudonym-key-fingerprint"

    @property
    def wake_channel(self) -> str:
        """A pub/sub channel, not a key: the same name on a cluster, where a PUBLISH (also one
        from a script) reaches the subscribers on every node."""
        return f"{self.prefix}:wake"


def inbound_streams(keys: Keys, count: int) -> list[str]:
    """The inbound streams of a deployment with this many partitions."""
    return [keys.inbound_of(p) for p in range(count)]
