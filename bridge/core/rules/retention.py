"""Personal data kept only as long as needed: the LINE user IDs of long-closed cases, the records
of older ones, old audit records, and what was set aside for an operator."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bridge.core.case import Case
from bridge.core.effects import (
    Decision,
    DeleteCaseRecords,
    Effect,
    EraseChildIds,
    TrimAudit,
    TrimSetAside,
)
from bridge.core.ids import CaseNumber
from bridge.core.policy import Policy


def ids_closed_before(policy: Policy, *, now: float) -> float:
    """Cases closed before this time no longer keep their child's LINE user ID."""
    return now - policy.closed_case_days * 86400


def set_aside_kept_since(policy: Policy, *, now: float) -> float:
    """What was set aside for an operator before this time is dropped (its words with it)."""
    return now - policy.set_aside_days * 86400


def records_closed_before(policy: Policy, *, now: float) -> float:
    """Cases closed before this time no longer keep their record."""
    return now - policy.case_record_days * 86400


def on_retention(
    closed_long_ago: tuple[CaseNumber, ...],
    policy: Policy,
    *,
    now: float,
    records_due: Mapping[CaseNumber, Case | None] | None = None,
    blocked_from: Collection[CaseNumber] = (),
) -> Decision:
    """Personal data kept only as long as needed: the LINE user IDs of cases closed before
    ids_closed_before() are erased; the records of cases closed before records_closed_before()
    go (records_due: those the index of closed cases lists as due, None where the record is
    gone already), except the case a block was made from, which stays while the block does (a
    supervisor unblocks by its number); audit records past their retention period are dropped,
    and so is what was set aside for an operator before set_aside_kept_since()."""
    cutoff = records_closed_before(policy, now=now)
    deleted = tuple(
        number
        for number, case in (records_due or {}).items()
        if case is None or (not case.is_open and (case.closed_at or 0) < cutoff and number not in blocked_from)
    )
    erased = tuple(number for number in closed_long_ago if number not in deleted)
    effects: list[Effect] = []
    if erased:
        effects.append(EraseChildIds(erased))
    if deleted:
        effects.append(DeleteCaseRecords(deleted))
    effects.append(TrimAudit(now - policy.audit_retention_days * 86400))
    effects.append(TrimSetAside(set_aside_kept_since(policy, now=now)))
    return Decision(effects=tuple(effects))
