"""What is set aside for an operator, as the core decides it: how long it is kept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bridge import core
from bridge.config.policy_file import load_policy
from bridge.core.ids import CaseNumber
from bridge.core.policy import Policy

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "config" / "bridge.toml")


def test_the_shipped_policy_keeps_what_was_set_aside_two_weeks(policy: Policy) -> None:
    assert policy.set_aside_days == 14
    assert core.set_aside_kept_since(policy, now=NOW) == NOW - 14 * 86400


def test_the_retention_sweep_trims_what_was_set_aside_by_the_policys_days(policy: Policy) -> None:
    policy = dataclasses.replace(policy, set_aside_days=3)
    effects = core.on_retention((), policy, now=NOW).effects
    assert core.TrimSetAside(NOW - 3 * 86400) in effects


def test_an_operators_replay_and_drop_go_on_the_record_with_who_and_which_entry() -> None:
    delivery, inbound = core.SetAsideStream.DELIVERIES, core.SetAsideStream.INBOUND
    entries = (core.SetAsideEntry(delivery, "5-0", CaseNumber(3)), core.SetAsideEntry(inbound, "6-0"))
    replayed = core.on_set_aside_action(core.SetAsideAction.REPLAY, entries, operator="yamada")
    assert replayed.effects == (
        core.ReplaySetAside(delivery, "5-0"),
        core.Audit(CaseNumber(3), "yamada", "set-aside:replay", "delivery 5-0"),
        core.ReplaySetAside(inbound, "6-0"),
        core.Audit(None, "yamada", "set-aside:replay", "inbound 6-0"),
    )
    assert replayed.deliveries == ()
    dropped = core.on_set_aside_action(core.SetAsideAction.DROP, entries[:1], operator="yamada")
    assert dropped.effects == (
        core.DropSetAside(delivery, "5-0"),
        core.Audit(CaseNumber(3), "yamada", "set-aside:drop", "delivery 5-0"),
    )
