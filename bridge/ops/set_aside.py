"""`bridge set-aside list | replay ID... | drop ID...`: what was set aside for an operator.

Two streams hold it: events the router could not decide (inbound) and deliveries a platform
would not take (delivery: a child's words Slack refused outright). `list` shows each entry's
stream, id, when it was set aside (in the policy's zone), what kind of event or delivery it is,
its case when known and why it was set aside; the words in it only with --show-words, and
never a LINE user ID or a token. `replay` puts entries back where they came from (an event into
the inbound stream, decided again; a delivery at the end of its lane, tried again) and `drop`
deletes them: each in one atomic step with its audit record (who ran it and which entry, never
what it held), so an entry is never replayed twice or lost between the two. An id that is not
there changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import assert_never

from redis.exceptions import RedisError

from bridge import core
from bridge.adapters.redis.codec import decode_item
from bridge.adapters.redis.commit import Committed
from bridge.adapters.redis.connect import RedisClient, open_redis
from bridge.adapters.redis.set_aside import ENTRY_ID, SetAside
from bridge.adapters.redis.store import Store
from bridge.config.policy_file import load_policy
from bridge.config.redis_url import redis_target_from_environment
from bridge.config.settings import pseudonym_key_bytes
from bridge.core.channels import pool_of
from bridge.core.deliveries import LinePush, LineReply, from_payload
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    ChildUnfollowed,
    ControlRequested,
    Ignored,
    InboundEvent,
    MemberChanged,
    PurgeRequested,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
    TimerFired,
)
from bridge.core.ids import CaseNumber, LineUserId, ThreadTs
from bridge.core.parts import ChildWords, Quoted, Text
from bridge.core.policy import Policy
from bridge.core.rules.controls import requested_number
from bridge.engine.commit import Loaded, Plan
from bridge.engine.entries import parse_entry

STREAMS = {stream.value: stream for stream in core.SetAsideStream}


class Refused(Exception):
    """Bad input or an entry that is not there: said to the operator, nothing changed."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Described:
    """What an operator may see of an entry (words only when asked for), and what finds its case
    (the child, a thread: used for the look-up, never shown)."""

    kind: str
    case: CaseNumber | None = None
    words: str | None = None
    child: LineUserId | None = None
    thread_ts: str | None = None
    channel: str | None = None  # the thread's (a ts is unique only within its channel)


def describe(entry: SetAside) -> Described:
    if entry.stream is core.SetAsideStream.INBOUND:
        try:
            event = parse_entry(entry.fields)
        except Exception:
            return Described(f"{entry.fields.get('source') or '?'} event (unreadable)")
        return describe_event(event)
    try:
        _, payload, _ = decode_item(entry.fields.get("item", ""))
        delivery = from_payload(payload)
    except Exception:
        return Described("delivery (unreadable)")
    lane = entry.fields.get("lane", "")
    case: CaseNumber | None = getattr(delivery, "case", None)
    if case is None and lane.startswith("slack:") and lane[6:].isdigit():
        case = CaseNumber(int(lane[6:]))
    role = getattr(delivery, "role", None)
    kind = delivery.kind + (f" ({role.value})" if role is not None else "")
    if isinstance(delivery, LinePush | LineReply):
        return Described(kind, case, "\n".join(delivery.texts))  # never .to or the reply token
    text: Text | None = getattr(delivery, "text", None)
    return Described(kind, case, words_of(text) if text is not None else None)


def describe_event(event: InboundEvent) -> Described:
    """Every event type has a case: mypy fails on one without."""
    match event:
        case ChildMessage():
            media = f" ({event.media.type})" if event.media is not None else ""
            return Described("LINE message" + media, words=event.text, child=event.child_id)
        case ChildFollowed():
            return Described("LINE follow", child=event.child_id)
        case ChildUnfollowed():
            return Described("LINE unfollow", child=event.child_id)
        case ThreadMessage():
            return Described("Slack message", words=event.text, thread_ts=event.thread_ts, channel=event.channel)
        case ThreadEdit():
            thread = event.current.thread_ts
            return Described("Slack message edit", words=event.current.text, thread_ts=thread, channel=event.channel)
        case ThreadDelete():
            return Described("Slack message delete", thread_ts=event.previous.thread_ts, channel=event.channel)
        case ControlRequested():
            words = " ".join(part for part in (event.text, event.reason) if part)
            number = requested_number(event)
            return Described(
                f"Slack control {event.action}", number, words, thread_ts=event.thread_ts, channel=event.channel
            )
        case MemberChanged():
            return Described("Slack member " + ("joined" if event.joined else "left"))
        case PurgeRequested():
            return Described("operator purge", event.case)
        case TimerFired():
            return Described(f"timer {event.kind.value}", event.case)
        case Ignored():
            return Described(f"ignored event ({event.reason})")
        case _:
            assert_never(event)


def words_of(text: Text) -> str:
    """The words of a text for Slack: the bridge's, the child's and what was quoted."""
    return "".join(
        part if isinstance(part, str) else part.words if isinstance(part, ChildWords | Quoted) else "" for part in text
    )


async def case_of(store: Store, found: Described, pool: tuple[str, ...] = ()) -> CaseNumber | None:
    """The case an entry belongs to: named in it, the case of its thread (in its channel of the
    pool of case channels, when there is one), or the child's open case."""
    if found.case is not None:
        return found.case
    if found.thread_ts:
        return await store.case_by_thread(ThreadTs(found.thread_ts), found.channel, pool)
    if found.child is not None:
        try:
            return await store.open_case_of(found.child)
        except RuntimeError:  # no pseudonym key given: the child's case cannot be found
            return None
    return None


def format_entry(entry: SetAside, found: Described, case: CaseNumber | None, zone: tzinfo, *, words: bool) -> str:
    """One entry as a line (and its words on the next, when asked), every field through visible()."""
    from bridge.cli import visible

    at = datetime.fromtimestamp(entry.at, zone).strftime("%Y-%m-%d %H:%M:%S")
    shown = f"#{case}" if case is not None else "-"
    why = entry.fields.get("why", "")
    line = f"{at}  {entry.stream.value:<8}  {entry.entry_id:<16}  {shown:>6}  {visible(found.kind)}"
    line += f"  why: {visible(why)}" if why else ""
    if words:
        line += "\n    " + (visible(found.words) if found.words else "(no words)")
    return line


# --- reading and writing Redis -------------------------------------------------------------


def _store(redis: RedisClient) -> Store:
    """A store that can find a child's case when BRIDGE_PSEUDONYM_KEY is set as for the worker
    (without it, or with a key that is not one, the list shows no case for a LINE event)."""
    try:
        secret: bytes | None = pseudonym_key_bytes(os.environ.get("BRIDGE_PSEUDONYM_KEY", ""))
    except ValueError:
        secret = None
    return Store(redis, child_key_secret=secret)


async def list_entries(redis: RedisClient, policy: Policy, *, words: bool) -> list[str]:
    store = _store(redis)
    lines = []
    for entry in await store.set_aside_entries():
        found = describe(entry)
        case = await case_of(store, found, pool_of(policy))
        lines.append(format_entry(entry, found, case, policy.timezone, words=words))
    return lines


async def find(store: Store, named: str) -> SetAside:
    """The entry an operator named: ID, or STREAM:ID when an id is in both streams."""
    stream_name, _, entry_id = named.rpartition(":")
    if (stream_name and stream_name not in STREAMS) or not ENTRY_ID.fullmatch(entry_id):
        raise Refused(
            f"{named!r} is not a set-aside entry id (as `bridge set-aside list` shows it, e.g. 1764565512345-0,"
            " or delivery:1764565512345-0)",
            code=2,
        )
    streams = [STREAMS[stream_name]] if stream_name else list(core.SetAsideStream)
    found = [entry for stream in streams if (entry := await store.set_aside_entry(stream, entry_id)) is not None]
    if not found:
        raise Refused(f"no set-aside entry {named} (replayed or dropped already, or past retention?)")
    if len(found) > 1:
        raise Refused(f"{entry_id} is in both streams: name it inbound:{entry_id} or delivery:{entry_id}")
    return found[0]


async def act(
    redis: RedisClient, policy: Policy, action: core.SetAsideAction, named: list[str], operator: str
) -> list[str]:
    """Replay or drop the named entries, all in one step with their audit records."""
    store = _store(redis)
    entries: dict[tuple[core.SetAsideStream, str], SetAside] = {}
    for name in named:
        entry = await find(store, name)
        replays_delivery = action is core.SetAsideAction.REPLAY and entry.stream is core.SetAsideStream.DELIVERIES
        if replays_delivery and (not entry.fields.get("lane") or "|" not in entry.fields.get("item", "")):
            raise Refused(f"{entry.entry_id} names no lane or item and cannot be replayed; drop it")
        entries[(entry.stream, entry.entry_id)] = entry
    loaded = Loaded(set_aside={key: entry.fields for key, entry in entries.items()})
    named_entries = [
        core.SetAsideEntry(entry.stream, entry.entry_id, await case_of(store, describe(entry), pool_of(policy)))
        for entry in entries.values()
    ]
    decision = core.on_set_aside_action(action, named_entries, operator=operator)
    plan = Plan(
        keys=store.keys,
        loaded=loaded,
        child_key=_no_child_key,
        now=time.time(),
        audit_retention_days=policy.audit_retention_days,
    )
    plan.effects(decision.effects, entry_id="set-aside")
    plan.checks()
    if await store.commit(plan.ops) is not Committed.DONE:
        raise Refused("an entry was replayed or dropped meanwhile, by someone else (list again)")
    done = "replayed" if action is core.SetAsideAction.REPLAY else "dropped"
    return [f"{done} {entry.stream.value} {entry.entry_id}" for entry in entries.values()]


def _no_child_key(child_id: LineUserId) -> str:
    raise RuntimeError("a set-aside action names no child")


# --- the command -----------------------------------------------------------------------------


def operator_name(given: str | None) -> str:
    """Who runs the command, for the audit record: --operator, else the login name."""
    from bridge.cli import visible

    name = given if given is not None else os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    if not name:
        raise Refused("say who you are with --operator NAME (it goes on the audit record)", code=2)
    if len(name) > 64 or name.strip() != name or visible(name) != name:
        raise Refused("--operator: at most 64 characters, no control characters or surrounding spaces", code=2)
    return name


def run(args: argparse.Namespace) -> int:
    policy = load_policy(Path(args.config or os.environ.get("BRIDGE_CONFIG", "config/bridge.toml")))
    target = redis_target_from_environment(os.environ)

    async def go() -> list[str]:
        redis = open_redis(target, socket_timeout=10)
        try:
            if args.action == "list":
                return await list_entries(redis, policy, words=args.show_words)
            action = core.SetAsideAction(args.action)
            return await act(redis, policy, action, list(dict.fromkeys(args.ids)), operator_name(args.operator))
        finally:
            await redis.aclose()

    try:
        lines = asyncio.run(go())
    except Refused as refused:
        print(f"bridge: {refused}; nothing changed", file=sys.stderr)
        return refused.code
    except (RedisError, OSError) as exc:
        unchanged = "" if args.action == "list" else "; nothing changed"
        print(f"bridge: cannot reach Redis ({type(exc).__name__}){unchanged}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if args.action == "list":
        count = "1 entry" if len(lines) == 1 else f"{len(lines)} entries"
        print(
            f"{count} set aside; each is dropped {policy.set_aside_days} days after it was set aside", file=sys.stderr
        )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`bridge set-aside ...`, registered by bridge/cli.py."""
    parser = commands.add_parser("set-aside", help="list, replay or drop what was set aside for an operator")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="policy file (default: $BRIDGE_CONFIG or config/bridge.toml)")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every entry set aside, without the words in it", parents=[common])
    listing.add_argument("--show-words", action="store_true", help="also the words (never a LINE user ID or token)")
    for name, what in (("replay", "put entries back where they came from"), ("drop", "delete entries")):
        acting = actions.add_parser(name, help=what + " (audited)", parents=[common])
        acting.add_argument("ids", nargs="+", metavar="ID", help="an id as `list` shows it (or STREAM:ID)")
        acting.add_argument("--operator", help="who runs this, for the audit record (default: $USER)")
    parser.set_defaults(run=run)
