"""Erasing a child on request (`bridge purge`, for a guardian or the office): everything the
bridge keeps about the child of a case goes, every case of theirs with it; each of their case
threads gets a note saying so; the audit keeps that it happened, without content."""

from __future__ import annotations

from bridge.core.case import Case
from bridge.core.deliveries import PostRole, ThreadPost
from bridge.core.effects import Audit, Decision, ForgetChild
from bridge.core.events import PurgeRequested
from bridge.core.policy import Policy

PURGE = "purge"  # the audit action


def operator_actor(operator: str) -> str:
    """How the audit names an operator (a Slack user ID or "auto" otherwise)."""
    return f"operator:{operator}"


def on_purge(request: PurgeRequested, cases: tuple[Case, ...], policy: Policy) -> Decision:
    """Erase the child of the requested case. cases: every case of that child's the bridge
    still keeps (the requested one among them), or none if the requested case is not known.

    An open case ends without a word to the child (the request is not theirs to see); what
    was queued for them or for the threads is dropped. Each thread the bridge knows gets a
    note; the audit gets one record per case erased: who, when, which case, nothing else.
    Slack's own copies stay (the bridge cannot delete what counsellors wrote); Slack's
    retention settings govern them."""
    actor = operator_actor(request.operator)
    if not any(case.number == request.case for case in cases):
        return Decision(effects=(Audit(request.case, actor, f"refused:{PURGE}", "unknown case"),))
    erased = sorted(cases, key=lambda case: case.number)
    notes = tuple(
        ThreadPost(
            case=case.number,
            text=policy.render_parts("purge_note", case=case.number),
            role=PostRole.NOTE,
            thread_ts=case.thread_ts,  # the case's lane forgets its thread with the record
            channel=case.channel,
        )
        for case in erased
        if case.thread_ts is not None
    )
    numbers = tuple(case.number for case in erased)
    audits = tuple(Audit(number, actor, PURGE) for number in numbers)
    return Decision(deliveries=notes, effects=(ForgetChild(request.case, numbers), *audits))
