"""How the bridge's values are kept in Redis: case records, blocks, lane items, and the replies
of the client as text."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from bridge.adapters.redis.buckets import PACE_TAG_PATTERN
from bridge.core.case import Block, Case, CaseStatus
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs
from bridge.core.rules.floods import Recent


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds the lane lease for."""

    lane: str
    item_id: str
    payload: dict[str, Any]
    attempts: int  # its claims so far, this one included (a worker that died mid-attempt counts)
    enqueued_ms: int
    failures: int = 0  # its earlier attempts that failed (retry.Next.failed), which the backoff grows with
    thread_ts: ThreadTs | None = None  # the Slack thread of the lane's case, once its root is posted
    pace: str | None = None  # the channel bucket its post waits for (buckets.py), kept on a retry
    channel: str | None = None  # the pool's channel that thread is in; None: SLACK_CHANNEL_ID


@dataclass(frozen=True)
class CaseRecord:
    """A case as loaded, with what a commit checks it against: its version."""

    case: Case
    version: str
    child_key: str


@dataclass(frozen=True)
class ChildLoad:
    """Everything known of the child writing now, read in one round trip, with the values a
    commit checks (the child's open case and block, the case sequence) as they were read."""

    open_case: CaseRecord | None
    open_number_raw: str | None
    block: Block | None
    block_raw: str | None
    blocked_case: CaseRecord | None
    history: tuple[CaseNumber, ...]
    closed_notice: str | None
    seq_raw: str | None
    recent: Recent
    open_cases: int
    unanswered: int


def encode_item(item_id: str, payload: dict[str, Any], enqueued_ms: int, pace: str | None = None) -> str:
    """A lane item: "id|json". The id comes first so Lua can compare heads without JSON; a pace
    tag (the channel bucket its post waits for, buckets.py) comes right after the enqueue time,
    where the lane scripts find it without decoding the JSON."""
    if "|" in item_id or not item_id or any(c.isspace() for c in item_id):
        raise ValueError("item ids may not be empty or contain '|' or spaces")
    if pace is not None and not _PACE_TAG.fullmatch(pace):
        raise ValueError("a pace tag is <interval ms>:<tolerance ms>:<channel>")
    body: dict[str, Any] = {"at": enqueued_ms}
    if pace is not None:
        body["pace"] = pace
    body["delivery"] = payload
    # ASCII escapes: a lone surrogate from a client must not make the Redis client fail.
    return item_id + "|" + json.dumps(body, ensure_ascii=True, separators=(",", ":"))


_PACE_TAG = re.compile(r"\d+:\d+:[A-Za-z0-9]+")
_ITEM_PACE = re.compile(PACE_TAG_PATTERN)


def item_pace(raw: str) -> str | None:
    """The pace tag of an encoded lane item, if it has one."""
    found = _ITEM_PACE.match(raw)
    return found.group(1) if found else None


def decode_item(raw: str) -> tuple[str, dict[str, Any], int]:
    item_id, _, body = raw.partition("|")
    document = json.loads(body)
    return item_id, document["delivery"], int(document["at"])


def case_from(raw: dict[Any, Any]) -> Case | None:
    if not raw:
        return None
    fields = {as_text(k): as_text(v) for k, v in raw.items()}

    def moment(name: str) -> float | None:
        return float(fields[name]) if name in fields else None

    return Case(
        number=CaseNumber(int(fields["number"])),
        status=CaseStatus(fields["status"]),
        child_id=LineUserId(fields.get("child", "")),  # "" once erased after the retention period
        opened_at=float(fields["opened_at"]),
        thread_ts=ThreadTs(fields["thread_ts"]) if "thread_ts" in fields else None,
        closed_at=moment("closed_at"),
        closed_reason=fields.get("closed_reason"),
        arrived_closed=fields.get("arrived_closed") == "1",
        counsellor=SlackUserId(fields["counsellor"]) if "counsellor" in fields else None,
        counsellor_since=moment("counsellor_since"),
        last_counsellor_at=moment("last_counsellor_at"),
        last_child_at=moment("last_child_at"),
        hold=fields.get("hold") == "1",
        busy_notified=fields.get("busy_notified") == "1",
        earlier=tuple(CaseNumber(int(n)) for n in fields.get("earlier", "").split(",") if n),
        closed_by=SlackUserId(fields["closed_by"]) if fields.get("closed_by") else None,
        urgent=fields.get("urgent") == "1",
        blocked=fields.get("blocked") == "1",
        blocked_count=int(fields.get("blocked_count") or 0),
        flood_until=moment("flood_until"),
        deferred_texts=int(fields.get("deferred_texts") or 0),
        blocked_risk=fields.get("blocked_risk") == "1",
        risks=frozenset(key for key in fields.get("risks", "").split(",") if key),
        block_reminded_at=moment("block_reminded_at"),
        channel=fields.get("channel") or None,
    )


def record_from(raw: dict[Any, Any]) -> CaseRecord | None:
    case = case_from(raw)
    if case is None:
        return None
    fields = {as_text(k): as_text(v) for k, v in raw.items()}
    return CaseRecord(case=case, version=fields.get("v", ""), child_key=fields.get("child_key", ""))


def pairs(flat: list[Any] | dict[Any, Any]) -> dict[Any, Any]:
    """A flat [field, value, ...] reply (HGETALL inside a script) as a dict. (An empty one may
    come as {}: Lua's JSON encoder cannot tell an empty list from an empty map.)"""
    if not flat:
        return {}
    assert isinstance(flat, list)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def kept_text(text: str) -> str:
    """A child's words as kept in a Redis list: JSON-escaped, so any text survives exactly
    (even a lone surrogate, which is no valid UTF-8)."""
    return json.dumps(text, ensure_ascii=True)


def deferred_text(kept: str) -> str:
    """Inverse of kept_text; a text kept before it was escaped reads as it was."""
    if kept.startswith('"'):
        try:
            value = json.loads(kept)
        except ValueError:
            return kept
        if isinstance(value, str):
            return value
    return kept


def block_from(raw: str) -> Block:
    record = json.loads(raw)
    return Block(
        case=CaseNumber(int(record["case"])),
        by=SlackUserId(str(record["by"])),
        at=float(record["at"]),
        reason=str(record["reason"]),
    )


def as_text(value: bytes | str) -> str:
    """Redis replies as text, whether the client decodes them or not."""
    return value.decode() if isinstance(value, bytes) else value
