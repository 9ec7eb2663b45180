"""Personal data kept only as long as needed: LINE user IDs of long-closed cases, old audit
records, and what was set aside for an operator."""

from __future__ import annotations

from bridge.core.effects import (
    Decision,
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


def on_retention(closed_long_ago: tuple[CaseNumber, ...], policy: Policy, *, now: float) -> Decision:
    """Personal data kept only as long as needed: the LINE user IDs of cases closed before
    ids_closed_before() are erased, audit records past their retention period dropped, and so is
    what was set aside for an operator before set_aside_kept_since()."""
    effects: list[Effect] = [
        TrimAudit(now - policy.audit_retention_days * 86400),
        TrimSetAside(set_aside_kept_since(policy, now=now)),
    ]
    if closed_long_ago:
        effects.insert(0, EraseChildIds(closed_long_ago))
    return Decision(effects=tuple(effects))
