"""A decision as one commit: the core's effects and deliveries as generic Redis operations.

Each effect becomes plain writes (set a field, append, enqueue); no rule is decided here, only
how a decided change is stored. What the decision was made from is checked in the same step:
every case it changes must still have the version it was loaded with, and a case it opens must
still be unopened (see Loaded). The inbound entry is acknowledged in the same step, so a crash
leaves either the whole decision or none of it, and a replay simply decides again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, assert_never

from bridge import core
from bridge.adapters.redis.codec import CaseRecord, encode_item, kept_text
from bridge.adapters.redis.commit import Ops
from bridge.adapters.redis.keys import DEFERRED_STICKERS_BEFORE_RENAME, Keys, thread_field
from bridge.adapters.redis.set_aside import set_aside_key
from bridge.core.deliveries import Delivery, RootPost, ThreadPost, to_payload
from bridge.core.ids import LineUserId
from bridge.engine.lanes import case_lane, child_lane, lane_for

log = logging.getLogger("bridge.worker")

# Stream entries deleted by one operation (a script unpacks its arguments, which has a limit).
_ENTRIES_PER_OP = 500
# How long the closed-period notice of a child is kept after the period ends.
_CLOSED_NOTICE_SLACK_S = 86400


@dataclass
class Loaded:
    """What a decision was made from, as a commit must find it unchanged.

    cases: the records loaded (their versions are checked when the decision changes them);
    fields: hash fields read (key, field) -> value or None; values: plain keys read;
    set_aside: set-aside entries read (stream, entry id) -> their fields (each must still be
    there when a decision replays or drops it); streams: streams read whole -> their last entry
    id then (None: empty); traces: entries found in them that hold something about a child being
    erased, stream -> entry ids (ForgetChild deletes them).
    """

    cases: dict[int, CaseRecord] = field(default_factory=dict)
    fields: dict[tuple[str, str], str | None] = field(default_factory=dict)
    values: dict[str, str | None] = field(default_factory=dict)
    set_aside: dict[tuple[core.SetAsideStream, str], dict[str, str]] = field(default_factory=dict)
    streams: dict[str, str | None] = field(default_factory=dict)
    traces: dict[str, list[str]] = field(default_factory=dict)

    def case(self, record: CaseRecord | None) -> core.Case | None:
        """Note a loaded record and hand its case to the core."""
        if record is None:
            return None
        self.cases[record.case.number] = record
        return record.case

    def cases_of(self, records: Iterable[CaseRecord]) -> list[core.Case]:
        return [self.cases.setdefault(r.case.number, r).case for r in records]


class Plan:
    """Builds the operations of one commit."""

    def __init__(
        self,
        *,
        keys: Keys,
        loaded: Loaded,
        child_key: Callable[[LineUserId], str],
        now: float,
        audit_retention_days: int,
        ops: Ops | None = None,
        pace: Callable[[Delivery, str | None], str | None] | None = None,
    ) -> None:
        self.keys = keys
        # The channel bucket a delivery's post waits for (engine/pacing.py), given its case's channel.
        self.pace = pace
        self.loaded = loaded
        self.child_key = child_key
        self.now = now
        self.audit_retention_days = audit_retention_days
        self.ops = ops if ops is not None else Ops()  # several plans may share one commit
        self._touched: set[int] = set()
        self._opened: dict[int, str] = {}  # cases this commit opens -> their child key
        self._opened_in: dict[int, str | None] = {}  # cases this commit opens -> their channel
        self.notes: list[tuple[Any, ...]] = []  # log lines, for once the commit is done

    def _note(self, message: str, *args: object) -> None:
        self.notes.append((message, *args))

    def log_notes(self) -> None:
        for message, *args in self.notes:
            log.info(message, *args)

    def checks(self) -> None:
        """What was read as absent or with a value must still read so."""
        for (key, name), value in self.loaded.fields.items():
            self.ops.field_is(key, name, value)
        for key, value in self.loaded.values.items():
            self.ops.value_is(key, value)
        for key, last in self.loaded.streams.items():
            self.ops.last_entry_is(key, last)

    def entry(self, entry_id: str, *, stream: str | None = None) -> None:
        """Acknowledge the inbound entry (in its partition's stream), if nobody committed it yet."""
        stream = stream or self.keys.inbound
        self.ops.present(stream, entry_id)
        self.ops.ack(stream, "router", entry_id)

    def deliveries(self, deliveries: Iterable[Delivery], *, item_prefix: str, now_ms: int) -> None:
        for index, delivery in enumerate(deliveries):
            lane = lane_for(delivery, self.child_key)
            pace = self.pace(delivery, self._channel_of(delivery)) if self.pace is not None else None
            item = encode_item(f"{item_prefix}.{index}", to_payload(delivery), now_ms, pace)
            self.ops.enqueue(self.keys.lane(lane), self.keys.due, lane, item)

    def _channel_of(self, delivery: Delivery) -> str | None:
        """The channel of the case a post goes into (None: SLACK_CHANNEL_ID), as the decision saw
        the case: opened by this commit, or loaded for it."""
        if not isinstance(delivery, RootPost | ThreadPost):
            return None
        if delivery.channel is not None or isinstance(delivery, RootPost):
            return delivery.channel  # a root names the channel its case opened in
        if delivery.case in self._opened_in:
            return self._opened_in[delivery.case]
        record = self.loaded.cases.get(delivery.case)
        return record.case.channel if record is not None else None

    def _case(self, number: int) -> str:
        """A case's key, checking once that it still has the version it was loaded with."""
        key = self.keys.case(number)
        if number not in self._touched and number not in self._opened:
            self._touched.add(number)
            record = self.loaded.cases.get(number)
            if record is not None:
                self.ops.field_is(key, "v", record.version)
            self.ops.hincrby(key, "v", 1)
        return key

    def _delete_record(self, number: int) -> None:
        """Delete a case's record and what points at it or hangs on it: the lookup by its
        thread, its lane towards Slack and that lane's thread, its flood window and deferred
        texts, its place in the indexes of cases. Checked against the version it was loaded with
        (a deliverer may record its thread meanwhile)."""
        keys, ops = self.keys, self.ops
        key = keys.case(number)
        record = self.loaded.cases.get(number)
        if record is not None:
            if number not in self._touched:
                ops.field_is(key, "v", record.version)
            if record.case.thread_ts:
                ops.hdel(keys.by_thread, thread_field(record.case.thread_ts, record.case.channel))
        self._touched.add(number)
        lane = case_lane(number)
        for gone in (
            key,
            keys.lane(lane),
            keys.recent(number, "all"),
            keys.recent(number, "stickers"),
            keys.deferred(number),
            keys.deferred_before_rename(number),
        ):
            ops.delete(gone)
        ops.zrem(keys.due, lane)
        ops.hdel(keys.lane_threads, lane)
        for index in (keys.unanswered, keys.closed_arrivals, keys.closed_index, keys.closed_cases):
            ops.zrem(index, str(number))

    def _child_key_of(self, number: int) -> str | None:
        if number in self._opened:
            return self._opened[number]
        record = self.loaded.cases.get(number)
        return record.child_key if record is not None and record.child_key else None

    def effects(self, effects: Iterable[core.Effect], *, entry_id: str) -> None:
        for index, effect in enumerate(effects):
            self.effect(effect, marker=f"{entry_id}:{index}")

    def effect(self, effect: core.Effect, *, marker: str) -> None:
        """The writes of one effect. Every effect type has a case: mypy fails on one without."""
        keys, ops, now = self.keys, self.ops, self.now
        match effect:
            case core.OpenCase():
                child_key = self.child_key(effect.child_id)
                key = keys.case(effect.number)
                self._opened[effect.number] = child_key
                self._opened_in[effect.number] = effect.channel
                ops.set(keys.case_seq, str(effect.number))
                fields = {
                    "v": "1",
                    "number": str(effect.number),
                    "status": core.CaseStatus.OPEN.value,
                    "child": effect.child_id,
                    "child_key": child_key,
                    "opened_at": f"{effect.opened_at:.3f}",
                    "arrived_closed": "1" if effect.arrived_closed else "0",
                    "earlier": ",".join(str(n) for n in effect.earlier),
                }
                if effect.channel is not None:  # without a pool, the record is as it always was
                    fields["channel"] = effect.channel
                ops.hset(key, fields)
                history = keys.history(child_key)
                ops.delete(history)
                ops.rpush(history, *(str(n) for n in effect.history))
                ops.zadd(keys.unanswered, effect.number, str(effect.number))
                ops.hset(keys.open_by_child, {child_key: str(effect.number)})
                self._note("case opened case=%d while=%s", effect.number, "closed" if effect.arrived_closed else "open")
            case core.NoteRecent():
                at_ms = int(effect.at * 1000)
                since = f"({at_ms - effect.window_s * 1000}"
                ttl = effect.window_s + 60
                member = marker.rsplit(":", 1)[0]  # the entry: one mark per message
                kinds = ["all", "stickers"] if effect.sticker else ["all"]
                for kind in kinds:
                    recent = keys.recent(effect.number, kind)
                    ops.zadd(recent, at_ms, member, nx=True)
                    ops.zremrangebyscore(recent, "-inf", since)
                    ops.expire(recent, ttl)
            case core.CloseCase():
                fields = {
                    "status": core.CaseStatus.CLOSED.value,
                    "closed_at": f"{now:.3f}",
                    "closed_reason": effect.reason.value,
                }
                if effect.by:
                    fields["closed_by"] = effect.by
                ops.hset(self._case(effect.number), fields)
                ops.zrem(keys.unanswered, str(effect.number))
                ops.zadd(keys.closed_index, now, str(effect.number))
                ops.zadd(keys.closed_cases, now, str(effect.number))
                closing_child = self._child_key_of(effect.number)
                if closing_child is not None:  # the child may open a new case again
                    ops.hdel_if(keys.open_by_child, closing_child, str(effect.number))
                self._note("case closed case=%d reason=%s", effect.number, effect.reason.value)
            case core.ScheduleTimer():
                member = effect.member
                ops.arm(keys.timers, keys.fired_prefix + member, int(effect.at * 1000), member)
            case core.MarkClosedNotice():
                ttl = max(60, int(effect.until - now) + _CLOSED_NOTICE_SLACK_S)
                ops.set(keys.closed_notice(self.child_key(effect.child_id)), effect.period, ex=ttl)
            case core.MarkBusyNotified():
                ops.hset(self._case(effect.number), {"busy_notified": "1"})
            case core.MarkArrivedClosed():
                ops.hset(self._case(effect.number), {"arrived_closed": "1"})
            case core.NoteClosedArrival():
                ops.zadd(keys.closed_arrivals, effect.at, str(effect.number), nx=True)
            case core.ClearClosedArrivals():
                ops.zrem(keys.closed_arrivals, *(str(n) for n in effect.numbers))
            case core.AssignCounsellor():
                fields = {"counsellor": effect.user, "counsellor_since": f"{effect.at:.3f}"}
                ops.hset(self._case(effect.number), fields)
                ops.zrem(keys.unanswered, str(effect.number))
            case core.NoteCounsellorReply():
                ops.hset(self._case(effect.number), {"last_counsellor_at": f"{effect.at:.3f}"})
            case core.NoteChildMessage():
                ops.hset(self._case(effect.number), {"last_child_at": f"{effect.at:.3f}"})
            case core.HoldCase():
                ops.hset(self._case(effect.number), {"hold": "1"})
                self._note("case on hold case=%d", effect.number)
            case core.MarkUrgent():
                ops.hset(self._case(effect.number), {"urgent": "1"})
                self._note("case marked urgent case=%d", effect.number)
            case core.BlockChild():
                blocked_child = self._child_key_of(effect.number)
                key = self._case(effect.number)
                if blocked_child is None:
                    return  # a case without its child's pseudonym cannot have been decided on
                block = {"case": effect.number, "by": effect.by, "at": effect.at, "reason": effect.reason}
                ops.hset(keys.blocked, {blocked_child: json.dumps(block, ensure_ascii=True)})
                ops.hset(key, {"blocked": "1", "blocked_count": "0", "blocked_risk": "0"})
                self._note("child blocked case=%d", effect.number)
            case core.UnblockChild():
                unblocked_child = self._child_key_of(effect.number)
                if unblocked_child is not None:
                    ops.hdel(keys.blocked, unblocked_child)
                for number in effect.shown_on or (effect.number,):
                    ops.hset(self._case(number), {"blocked": "0"})
                self._note("child unblocked case=%d", effect.number)
            case core.NoteRisks():
                ops.hset(self._case(effect.number), {"risks": ",".join(sorted(effect.risks))})
            case core.MarkBlockedRisk():
                ops.hset(self._case(effect.number), {"blocked_risk": "1"})
            case core.ChangeMember():
                members = keys.roster_members if effect.channel is None else keys.roster_members_of(effect.channel)
                if effect.joined:
                    ops.sadd(members, effect.user)
                else:
                    ops.srem(members, effect.user)
                self._note("roster changed joined=%s", effect.joined)
            case core.NoteBlockReminder():
                ops.hset(self._case(effect.number), {"block_reminded_at": f"{effect.at:.3f}"})
                self._note("block review reminder case=%d", effect.number)
            case core.CountBlockedMessage():
                ops.hincrby(self._case(effect.number), "blocked_count", 1)
            case core.StartFlood():
                ops.hset(self._case(effect.number), {"flood_until": f"{effect.until:.3f}"})
                self._note("flood cool-down started case=%d", effect.number)
            case core.DeferMessage():
                if effect.dropped:
                    ops.hincrby(self._case(effect.number), "deferred_dropped", 1)
                elif effect.text is None:
                    ops.hincrby(self._case(effect.number), "deferred_stickers", 1)
                else:
                    ops.rpush(keys.deferred(effect.number), kept_text(effect.text))
                    ops.hincrby(self._case(effect.number), "deferred_texts", 1)
            case core.ReleaseFlood():
                # What was deferred under the names before the rename goes too (see keys.py).
                case_key = self._case(effect.number)
                ops.hdel(
                    case_key,
                    "flood_until",
                    "deferred_stickers",
                    "deferred_texts",
                    "deferred_dropped",
                    DEFERRED_STICKERS_BEFORE_RENAME,
                )
                ops.delete(keys.deferred(effect.number))
                ops.delete(keys.deferred_before_rename(effect.number))
                self._note("flood cool-down ended case=%d", effect.number)
            case core.EraseChildIds():
                for number in effect.numbers:
                    ops.hdel(self._case(number), "child")
                    ops.zrem(keys.closed_index, str(number))
                self._note("LINE user IDs of closed cases erased count=%d", len(effect.numbers))
            case core.DeleteCaseRecords():
                for number in effect.numbers:
                    child = self._child_key_of(number)
                    self._delete_record(number)
                    if child is not None:  # the child's next case no longer names it
                        ops.lrem(keys.history(child), str(number))
                self._note("closed case records deleted count=%d", len(effect.numbers))
            case core.ForgetChild():
                child = self._child_key_of(effect.number)
                for number in effect.cases:
                    self._delete_record(number)
                if child is not None:
                    for name in (keys.open_by_child, keys.blocked):
                        ops.hdel(name, child)
                    ops.delete(keys.history(child))
                    ops.delete(keys.closed_notice(child))
                    ops.delete(keys.lane(child_lane(child)))  # pushes not sent yet are not sent
                    ops.zrem(keys.due, child_lane(child))
                for stream, entry_ids in self.loaded.traces.items():
                    for start in range(0, len(entry_ids), _ENTRIES_PER_OP):
                        ops.xdel(stream, *entry_ids[start : start + _ENTRIES_PER_OP])
                self._note("child erased on request case=%d cases=%d", effect.number, len(effect.cases))
            case core.TrimAudit():
                ops.xtrim(keys.audit, min_id=_stream_id(effect.before))
            case core.TrimSetAside():
                for stream in core.SetAsideStream:
                    ops.xtrim(self._set_aside(stream), min_id=_stream_id(effect.before))
            case core.ReplaySetAside():
                self._replay(effect.stream, effect.entry_id)
            case core.DropSetAside():
                ops.present(self._set_aside(effect.stream), effect.entry_id)
                ops.xdel(self._set_aside(effect.stream), effect.entry_id)
                self._note("set-aside entry dropped stream=%s entry=%s", effect.stream.value, effect.entry_id)
            case core.Audit():
                record: dict[str, str] = {
                    "at": f"{now:.3f}",
                    "case": "" if effect.case is None else str(effect.case),
                    "actor": effect.actor,
                    "action": effect.action,
                    "reason": effect.reason,
                    "via": effect.via.value if effect.via is not None else "",
                }
                ops.xadd(keys.audit, record, min_id=_stream_id(now - self.audit_retention_days * 86400))
            case _:
                assert_never(effect)

    def _set_aside(self, stream: core.SetAsideStream) -> str:
        return set_aside_key(self.keys, stream)

    def _replay(self, stream: core.SetAsideStream, entry_id: str) -> None:
        """An event back into its partition's inbound stream (the router decides it again, as new); a
        delivery back at the end of its lane, counted as tried once, so that a post to Slack is
        first looked for (an earlier attempt may have landed) and a LINE reply goes as a push."""
        fields = self.loaded.set_aside[(stream, entry_id)]
        key = self._set_aside(stream)
        self.ops.present(key, entry_id)
        if stream is core.SetAsideStream.INBOUND:
            # Back into the partition it was set aside from (partition 0 for one that names none).
            named = fields.get("partition", "0")
            back = self.keys.inbound_of(int(named) if named.isdigit() and len(named) <= 2 else 0)
            self.ops.xappend(back, {"source": fields.get("source", ""), "body": fields.get("body", "")})
        else:
            lane, item = fields["lane"], fields["item"]
            self.ops.enqueue(self.keys.lane(lane), self.keys.due, lane, item)
            self.ops.hset(self.keys.attempts, {item.partition("|")[0]: "1"})
        self.ops.xdel(key, entry_id)
        self._note("set-aside entry replayed stream=%s entry=%s", stream.value, entry_id)


def _stream_id(at: float) -> str:
    return f"{max(0, int(at * 1000))}-0"
