"""What erasing a child on request (`bridge purge`) is decided from: every case of the child's,
and the entries of the audit and set-aside streams that hold something about them (a part of the
router's loading, decide.py; reads only, noted in a Loaded so the commit finds them unchanged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge import core
from bridge.adapters.redis.codec import as_text
from bridge.adapters.redis.keys import thread_field
from bridge.adapters.redis.store import Store
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    ChildUnfollowed,
    ControlRequested,
    InboundEvent,
    PurgeRequested,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
)
from bridge.core.rules.controls import requested_number
from bridge.engine.commit import Loaded
from bridge.engine.entries import parse_entry
from bridge.engine.lanes import case_lane, child_lane


async def load_child_of(store: Store, request: PurgeRequested, loaded: Loaded) -> tuple[core.Case, ...]:
    """Every case of the requested case's child (none if that case is not known), and what the
    streams hold about them, noted in loaded."""
    record = await store.case_record(request.case)
    if record is None:
        return ()
    if not record.child_key:  # a record without its child's pseudonym: only itself
        return tuple(loaded.cases_of([record]))
    child_key, keys = record.child_key, store.keys
    cases = loaded.cases_of(await store.case_records(await store.case_numbers_of_child(child_key)))
    # The child as read: no case opened or block made meanwhile.
    loaded.fields[(keys.open_by_child, child_key)] = await store.open_number_of_key(child_key)
    loaded.fields[(keys.blocked, child_key)] = await store.block_raw_of_key(child_key)
    await _find_traces(store, child_key, cases, loaded)
    return tuple(cases)


async def _find_traces(store: Store, child_key: str, cases: list[core.Case], loaded: Loaded) -> None:
    """The entries of the audit (records of the child's cases: a reason may tell of the child),
    of the set-aside stream of inbound events (the child's own, and Slack's in their threads)
    and of the set-aside deliveries (those of their lanes)."""
    keys = store.keys
    numbers = {str(case.number) for case in cases}
    # Their threads as by_thread names them: "<channel>:<ts>" in a pool's channel, else the ts.
    threads = {thread_field(case.thread_ts, case.channel) for case in cases if case.thread_ts}
    line_ids = [case.child_id for case in cases if case.child_id]  # while the records keep them
    lanes = {child_lane(child_key), *(case_lane(case.number) for case in cases)}

    def in_threads(thread_ts: str | None, channel: str | None) -> bool:
        """In one of the child's threads: by ts alone for a case that names no channel (as
        before pools), by channel and ts for one in a pool's channel."""
        return bool(thread_ts) and (
            thread_ts in threads or (channel is not None and f"{channel}:{thread_ts}" in threads)
        )

    def about_child(event: InboundEvent) -> bool:
        match event:
            case ChildMessage() | ChildFollowed() | ChildUnfollowed():
                return store.child_key(event.child_id) == child_key
            case ThreadMessage():
                return in_threads(event.thread_ts, event.channel)
            case ThreadEdit() | ThreadDelete():
                return in_threads(event.previous.thread_ts, event.channel)
            case ControlRequested():
                return in_threads(event.thread_ts, event.channel) or str(requested_number(event)) in numbers
            case _:
                return False

    def inbound_about_child(fields: dict[Any, Any]) -> bool:
        try:
            if about_child(parse_entry(fields)):
                return True
        except Exception:  # set aside because it could not be read: look for the ID itself
            pass
        body = as_text(fields.get(b"body", fields.get("body", b"")))
        return any(line_id in body for line_id in line_ids)

    def field(fields: dict[Any, Any], name: str) -> str:
        return as_text(fields.get(name.encode(), fields.get(name, b"")))

    def audit_of_child(fields: dict[Any, Any]) -> bool:
        return field(fields, "case") in numbers

    def delivery_of_child(fields: dict[Any, Any]) -> bool:
        return field(fields, "lane") in lanes

    found: dict[str, Callable[[dict[Any, Any]], bool]] = {
        keys.audit: audit_of_child,
        keys.set_aside: inbound_about_child,
        keys.deliveries_set_aside: delivery_of_child,
    }
    for stream, holds in found.items():
        entries, last = await store.stream_entries(stream)
        loaded.streams[stream] = last
        if ids := [entry_id for entry_id, fields in entries if holds(fields)]:
            loaded.traces[stream] = ids
