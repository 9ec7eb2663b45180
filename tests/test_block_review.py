"""Blocks under review, on a real Redis: a block that has stood block_review_days is pointed out
in the supervisors' channel once, again a period later, never after it is lifted, and never
with the child's words; the block itself stays. (End to end through the worker and fake Slack
in test_block_review_e2e.py.)"""

from __future__ import annotations

import dataclasses
import time

import pytest

from bridge import core
from bridge.core.case import Block, Case, CaseStatus
from bridge.core.deliveries import ChannelPost, ChannelTarget, from_payload
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs
from bridge.engine.router import Router
from tests.slack_text import slack
from tests.test_commit import apply, child_text, lane, route
from tests.test_retention import router as router  # a router on a real Redis

pytestmark = pytest.mark.redis

DAY = 86400.0
ONE = "U" + "a1" * 16


async def reminders(router: Router) -> list[str]:
    posts = [from_payload(d) for d in await lane(router, "slack:supervisors")]
    return [slack(p.text) for p in posts if isinstance(p, ChannelPost) and p.target is ChannelTarget.SUPERVISORS]


async def test_an_old_block_is_pointed_out_once_then_again_a_period_later(router: Router) -> None:
    store, now = router.store, time.time()
    await route(router, child_text("ひみつのことば", child=ONE))
    await store.record_thread(1, "slack:1", "111.1")
    blocked_at = now - 100 * DAY
    block = core.BlockChild(CaseNumber(1), SlackUserId("USUPER1"), "無関係な投稿の連続", blocked_at)
    await apply(router, block, core.CloseCase(CaseNumber(1), core.CloseReason.BLOCKED), cases=(1,))
    await router.standing_pass(blocked_at + 89 * DAY)  # not yet
    assert await reminders(router) == []
    await router.standing_pass(now)
    await router.standing_pass(now + 60)  # the next minute: not again
    (reminder,) = await reminders(router)
    assert "#1" in reminder and "100 日間" in reminder and "無関係な投稿の連続" in reminder
    assert "ひみつのことば" not in reminder
    assert await store.block_of(LineUserId(ONE)) is not None  # the block stays
    await router.standing_pass(now + 89 * DAY)
    assert len(await reminders(router)) == 1
    await router.standing_pass(now + 90 * DAY + 60)  # the minute after
    assert len(await reminders(router)) == 2
    await apply(router, core.UnblockChild(CaseNumber(1)), cases=(1,))
    await router.standing_pass(now + 400 * DAY)
    assert len(await reminders(router)) == 2


async def test_no_reminder_when_the_review_is_off(router: Router) -> None:
    now = time.time()
    router.policy = dataclasses.replace(router.policy, block_review_days=0)
    await route(router, child_text("こんにちは", child=ONE))
    await apply(router, core.BlockChild(CaseNumber(1), SlackUserId("USUPER1"), "迷惑", now - 900 * DAY), cases=(1,))
    await router.standing_pass(now)
    assert await reminders(router) == []


def test_the_rule_counts_from_the_block_or_the_last_reminder(router: Router) -> None:
    policy, now = router.policy, 1_800_000_000.0
    case = Case(CaseNumber(4), CaseStatus.CLOSED, LineUserId(""), now - 200 * DAY, thread_ts=ThreadTs("4.4"))
    block = Block(CaseNumber(4), SlackUserId("US"), now - 200 * DAY, "迷惑")
    assert len(core.on_block_review([(block, case)], policy, now=now).deliveries) == 1
    reminded = dataclasses.replace(case, block_reminded_at=now - 30 * DAY)
    assert core.on_block_review([(block, reminded)], policy, now=now) == core.NOTHING
    # Unblocked and blocked again: a reminder of the old block does not count for the new one.
    again = dataclasses.replace(block, at=now - 95 * DAY)
    stale = dataclasses.replace(case, block_reminded_at=now - 150 * DAY)
    assert len(core.on_block_review([(again, stale)], policy, now=now).deliveries) == 1
    assert core.on_block_review([(block, None)], policy, now=now) == core.NOTHING
