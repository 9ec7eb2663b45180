"""The retention rules as pure functions (rules/retention.py): what goes when, and what stays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bridge import core
from bridge.config.policy_file import load_policy
from bridge.core.case import Case, CaseStatus
from bridge.core.ids import CaseNumber, LineUserId
from bridge.core.policy import Policy

NOW = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture(scope="module")
def policy() -> Policy:
    shipped = load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")
    return dataclasses.replace(shipped, closed_case_days=30, case_record_days=365, audit_retention_days=100)


def closed(number: int, days_ago: float) -> Case:
    return Case(
        number=CaseNumber(number),
        status=CaseStatus.CLOSED,
        child_id=LineUserId(""),
        opened_at=NOW - days_ago * DAY - 3600,
        closed_at=NOW - days_ago * DAY,
    )


def effects_of(decision: core.Decision, kind: type[object]) -> list[object]:
    return [effect for effect in decision.effects if isinstance(effect, kind)]


def test_records_closed_before_the_period_go_and_later_ones_stay(policy: Policy) -> None:
    due = {CaseNumber(1): closed(1, 400), CaseNumber(2): closed(2, 364)}
    decision = core.on_retention((), policy, now=NOW, records_due=due)
    assert effects_of(decision, core.DeleteCaseRecords) == [core.DeleteCaseRecords((CaseNumber(1),))]
    assert core.records_closed_before(policy, now=NOW) == NOW - 365 * DAY


def test_an_open_case_is_never_deleted(policy: Policy) -> None:
    running = dataclasses.replace(closed(1, 400), status=CaseStatus.OPEN)
    decision = core.on_retention((), policy, now=NOW, records_due={CaseNumber(1): running})
    assert effects_of(decision, core.DeleteCaseRecords) == []


def test_the_case_a_block_was_made_from_stays(policy: Policy) -> None:
    due = {CaseNumber(1): closed(1, 400), CaseNumber(2): closed(2, 400)}
    decision = core.on_retention((), policy, now=NOW, records_due=due, blocked_from={CaseNumber(1)})
    assert effects_of(decision, core.DeleteCaseRecords) == [core.DeleteCaseRecords((CaseNumber(2),))]


def test_an_index_entry_whose_record_is_gone_is_cleared(policy: Policy) -> None:
    decision = core.on_retention((), policy, now=NOW, records_due={CaseNumber(5): None})
    assert effects_of(decision, core.DeleteCaseRecords) == [core.DeleteCaseRecords((CaseNumber(5),))]


def test_a_record_that_goes_is_not_also_erased_of_its_id(policy: Policy) -> None:
    """Both due in one pass: the record's deletion takes the LINE user ID with it."""
    due = {CaseNumber(1): closed(1, 400)}
    decision = core.on_retention((CaseNumber(1), CaseNumber(2)), policy, now=NOW, records_due=due)
    assert effects_of(decision, core.EraseChildIds) == [core.EraseChildIds((CaseNumber(2),))]
    assert effects_of(decision, core.TrimAudit) == [core.TrimAudit(NOW - 100 * DAY)]  # the audit: its own period
