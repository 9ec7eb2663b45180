"""Erasing a child on request, decided by the router on a real Redis: every key about the child
goes (their cases, history, block, flood lists, deferred texts, queued pushes, the lookups by
their threads, audit and set-aside entries), the other children's stay, each thread gets a note
that can still find its thread, and a request races nothing: it is decided in order with the
child's own messages, and again if a deliverer changed a case meanwhile.

End to end (the command, the worker, fake Slack) in test_purge_e2e.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge import core
from bridge.adapters import operator
from bridge.adapters.redis.commit import Committed
from bridge.core.deliveries import PostRole, ThreadPost, from_payload
from bridge.core.events import Ignored, PurgeRequested
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs
from bridge.core.parts import plain
from bridge.engine.router import Router
from tests.conftest import line_user_id
from tests.test_commit import apply, child_text, lane, recorded, route
from tests.test_retention import router as router  # a router on a real Redis

pytestmark = pytest.mark.redis

ONE, TWO = line_user_id(0x81), line_user_id(0x82)
WORDS = ("はじめてのそうだん", "ないしょのはなし", "ほりゅうされたことば")


async def everything(router: Router, *, but: str = "") -> bytes:
    """Every key and value in Redis, as one blob to search or compare; with `but`, without that
    key and without the inbound de-duplication markers (the request's own is new)."""
    redis: Any = router.redis  # its replies are bytes (no decode_responses); typed loosely
    parts: list[bytes] = []
    seen_prefix = router.store.keys.seen("x", "x").removesuffix(":x:x")
    async for key in redis.scan_iter(match="br:*"):
        if but and (key.decode() == but or key.decode().startswith(seen_prefix)):
            continue
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "hash":
            parts += [b for pair in (await redis.hgetall(key)).items() for b in pair]
        elif kind == "list":
            parts += await redis.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "zset":
            parts += await redis.zrange(key, 0, -1)
        elif kind == "stream":
            parts += [b for _, fields in await redis.xrange(key) for pair in fields.items() for b in pair]
    return b"\n".join(parts)


def holds(blob: bytes, text: str) -> bool:
    """Whether the blob holds the text as written or JSON-escaped (as lane items and deferred
    texts keep it)."""
    return text.encode() in blob or json.dumps(text)[1:-1].encode() in blob


async def purge(router: Router, case: int, name: str = "yamada") -> str:
    return await route(router, operator.purge_request(CaseNumber(case), name), source=operator.SOURCE)


async def a_child_with_two_cases(router: Router) -> None:
    """ONE: case 1 closed (with a memo in the audit), case 2 open with a flood's deferred text,
    queued pushes, a block and set-aside entries; TWO: case 3."""
    store, keys = router.store, router.store.keys
    await route(router, child_text(WORDS[0], child=ONE))  # case 1
    await store.record_thread(1, "slack:1", "111.1")
    await apply(router, core.Audit(CaseNumber(1), "UC1", "close", "学校と連携予定"))
    await apply(router, core.CloseCase(CaseNumber(1), core.CloseReason.COUNSELLOR), cases=(1,))
    await route(router, child_text(WORDS[1], child=ONE))  # case 2, naming case 1
    await route(router, child_text("べつのこども", child=TWO))  # case 3
    await store.record_thread(2, "slack:2", "222.2")
    await store.record_thread(3, "slack:3", "333.3")
    await apply(router, core.StartFlood(CaseNumber(2), 9e9), cases=(2,))
    await apply(router, core.DeferMessage(CaseNumber(2), WORDS[2]), cases=(2,))
    await apply(router, core.BlockChild(CaseNumber(2), SlackUserId("USUPER1"), "迷惑", 5.0), cases=(2,))
    # What Slack refused and an entry the router could not read, as they are set aside.
    queued: Any = await store.redis.lrange(keys.lane("slack:2"), 0, -1)
    await store.redis.xadd(keys.deliveries_set_aside, {"lane": "slack:2", "item": queued[-1]})
    await store.redis.xadd(keys.set_aside, {"source": "line", "body": child_text(WORDS[0], child=ONE), "entry": "1-0"})
    await store.redis.xadd(keys.set_aside, {"source": "line", "body": "{garbled " + ONE, "entry": "2-0"})
    await store.redis.xadd(keys.set_aside, {"source": "line", "body": child_text("べつ", child=TWO), "entry": "3-0"})


async def test_a_purge_erases_every_key_about_the_child_and_nothing_else(router: Router) -> None:
    store, keys = router.store, router.store.keys
    await a_child_with_two_cases(router)
    pseudonym = store.child_key(LineUserId(ONE)).encode()
    before = await everything(router)
    assert pseudonym in before and ONE.encode() in before and all(holds(before, w) for w in (*WORDS, "学校と連携予定"))

    await purge(router, 2)

    after = await everything(router)
    assert pseudonym not in after and ONE.encode() not in after
    for words in (*WORDS, "学校と連携予定"):
        assert not holds(after, words), words
    assert not await store.redis.exists(keys.case(1), keys.case(2), keys.history(pseudonym.decode()))
    assert (
        await store.case_by_thread(ThreadTs("111.1")) is None and await store.case_by_thread(ThreadTs("222.2")) is None
    )
    assert await store.block_of(LineUserId(ONE)) is None and await store.open_case_of(LineUserId(ONE)) is None
    # The other child keeps everything.
    other = await store.get_case(CaseNumber(3))
    assert other is not None and other.thread_ts == "333.3" and TWO.encode() in after
    assert await store.redis.xlen(keys.set_aside) == 1
    # The audit keeps that it happened: which cases, who, when; no content.
    records = await store.audit_records()
    assert [(r["case"], r["actor"], r["action"], r["reason"]) for r in records] == [
        ("1", "operator:yamada", "purge", ""),
        ("2", "operator:yamada", "purge", ""),
    ]


async def test_each_thread_gets_a_note_that_finds_its_thread_without_the_record(router: Router) -> None:
    await a_child_with_two_cases(router)
    await purge(router, 1)  # any case of the child's names them
    for number, thread in ((1, "111.1"), (2, "222.2")):
        (note,) = [from_payload(d) for d in await lane(router, f"slack:{number}")]  # what was queued is gone
        assert isinstance(note, ThreadPost) and note.role is PostRole.NOTE and note.thread_ts == thread
        assert f"#{number}" in plain(note.text) and "消去" in plain(note.text)
    assert await router.redis.hget(router.store.keys.lane_threads, "slack:1") is None
    assert await lane(router, "line:" + router.store.child_key(LineUserId(ONE))) == []  # no word to the child


async def test_an_unknown_case_changes_nothing_but_the_refusal_on_record(router: Router) -> None:
    await a_child_with_two_cases(router)
    keys = router.store.keys
    before = sorted((await everything(router, but=keys.audit)).split(b"\n"))
    await purge(router, 99)
    assert sorted((await everything(router, but=keys.audit)).split(b"\n")) == before
    (refusal,) = [r for r in await router.store.audit_records() if r["action"] == "refused:purge"]
    assert refusal["case"] == "99" and refusal["actor"] == "operator:yamada"
    assert await router.store.get_case(CaseNumber(2)) is not None


async def test_the_childs_messages_are_decided_wholly_before_or_after_the_purge(router: Router) -> None:
    """Recorded in this order: a message, the purge, a message. The first joins the case the
    purge erases; the second opens a new case that names no earlier one."""
    await route(router, child_text("まえ", child=ONE))
    await router.store.record_thread(1, "slack:1", "111.1")
    entries = [
        await recorded(router, child_text("すぐまえ", child=ONE)),
        await recorded(router, operator.purge_request(CaseNumber(1), "yamada"), source=operator.SOURCE),
        await recorded(router, child_text("すぐあと", child=ONE)),
    ]
    for entry_id, fields in entries:
        await router.route_entry(entry_id, fields)
    assert await router.store.get_case(CaseNumber(1)) is None
    later = await router.store.get_case(CaseNumber(2))
    assert later is not None and later.is_open and later.earlier == ()
    assert not holds(await everything(router), "すぐまえ")


async def test_a_thread_recorded_while_the_purge_was_decided_is_noted_too(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case's root was posted meanwhile (a deliverer records its thread, changing the case's
    version): the commit writes nothing, the pass runs again and the note names that thread."""
    store = router.store
    await route(router, child_text("まえ", child=ONE))
    real_commit = store.commit
    calls: list[int] = []

    async def root_posted_first(ops: Any) -> Committed:
        if not calls:
            await store.record_thread(1, "slack:1", "111.1")
        calls.append(1)
        return await real_commit(ops)

    monkeypatch.setattr(store, "commit", root_posted_first)
    router.takers = None
    entry_id, fields = await recorded(router, operator.purge_request(CaseNumber(1), "yamada"), source=operator.SOURCE)
    await router.route_entry(entry_id, fields)
    assert len(calls) == 2 and await store.get_case(CaseNumber(1)) is None
    assert await store.case_by_thread(ThreadTs("111.1")) is None
    (note,) = [from_payload(d) for d in await lane(router, "slack:1")]
    assert isinstance(note, ThreadPost) and note.thread_ts == "111.1"


def test_a_request_is_read_back_as_made_and_anything_else_is_ignored() -> None:
    body = operator.purge_request(CaseNumber(12), "山田.t")
    assert operator.parse_event(json.loads(body)) == PurgeRequested(CaseNumber(12), "山田.t")
    for raw in (
        {"type": "purge", "case": "12", "operator": "x"},
        {"type": "purge", "case": 0, "operator": "x"},
        {"type": "purge", "case": 3, "operator": "a b"},
        {"type": "wipe", "case": 3, "operator": "x"},
        {"type": "purge", "case": True, "operator": "x"},
    ):
        assert isinstance(operator.parse_event(raw), Ignored)
    with pytest.raises(ValueError):
        operator.purge_request(CaseNumber(1), "rm -rf")


def test_the_rule_erases_every_case_and_notes_only_threads_it_knows(router: Router) -> None:
    policy = router.policy
    known = core.Case(CaseNumber(4), core.CaseStatus.CLOSED, LineUserId(""), 1.0, thread_ts=ThreadTs("44.4"))
    unposted = core.Case(CaseNumber(6), core.CaseStatus.OPEN, LineUserId(ONE), 2.0)  # its root not posted yet
    decision = core.on_purge(PurgeRequested(CaseNumber(6), "yamada"), (unposted, known), policy)
    assert [(d.case, d.thread_ts) for d in decision.deliveries if isinstance(d, ThreadPost)] == [(4, "44.4")]
    assert len(decision.deliveries) == 1  # nothing to the child
    assert decision.effects[0] == core.ForgetChild(CaseNumber(6), (CaseNumber(4), CaseNumber(6)))
    refused = core.on_purge(PurgeRequested(CaseNumber(5), "yamada"), (known,), policy)
    assert refused.deliveries == () and [type(e) for e in refused.effects] == [core.Audit]
