"""What an operator does with what was set aside (an event the router could not decide, a
child's words Slack refused): put it back where it came from, or drop it. Each on the audit
record with who did it and which entry, never what it held. How long it is kept otherwise is
the retention sweep's (rules/retention.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bridge.core.effects import Audit, Decision, DropSetAside, Effect, ReplaySetAside, SetAsideStream
from bridge.core.ids import CaseNumber


class SetAsideAction(StrEnum):
    REPLAY = "replay"  # back where it came from: decided again, or tried again
    DROP = "drop"  # deleted


@dataclass(frozen=True)
class SetAsideEntry:
    """A set-aside entry as an operator names it, with its case when that is known."""

    stream: SetAsideStream
    entry_id: str
    case: CaseNumber | None = None


def audit_action(action: SetAsideAction) -> str:
    """The action as the audit record names it."""
    return f"set-aside:{action.value}"


def on_set_aside_action(action: SetAsideAction, entries: Iterable[SetAsideEntry], *, operator: str) -> Decision:
    """Replay or drop each entry, all in one step, and record for each who did it to which entry."""
    effects: list[Effect] = []
    for entry in entries:
        effects.append(
            ReplaySetAside(entry.stream, entry.entry_id)
            if action is SetAsideAction.REPLAY
            else DropSetAside(entry.stream, entry.entry_id)
        )
        effects.append(Audit(entry.case, operator, audit_action(action), f"{entry.stream.value} {entry.entry_id}"))
    return Decision(effects=tuple(effects))
