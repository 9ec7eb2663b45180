"""A blocked child's messages: counted on the case they were blocked from, never relayed or kept."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.alerts import supervisor_mention, thread_link
from bridge.core.case import (
    Case,
)
from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    Delivery,
)
from bridge.core.effects import (
    AUTO,
    NOTHING,
    Audit,
    CountBlockedMessage,
    Decision,
    Effect,
    MarkBlockedRisk,
)
from bridge.core.events import ChildMessage
from bridge.core.policy import Policy
from bridge.core.root import root_update
from bridge.core.rules.risk import labels, risks_in, urgent_among


def on_blocked_message(message: ChildMessage, case: Case | None, policy: Policy) -> Decision:
    """A blocked child's message: not relayed, not answered, its content not kept; it is
    counted on the case the block was made from. Risk words still reach the supervisors."""
    if case is None:
        return NOTHING
    count = case.blocked_count + 1
    deliveries: list[Delivery] = []
    effects: list[Effect] = [CountBlockedMessage(case.number)]
    if count <= 10 or count % 10 == 0:  # the root shows the count without an update per message
        deliveries.append(root_update(replace(case, blocked_count=count), policy))
    urgent = urgent_among(risks_in(message.text, policy.safety))
    if not case.blocked_risk and urgent:  # once per block
        link = thread_link(case)
        found = labels(urgent)
        alert = policy.render_parts(
            "blocked_risk_alert", mention=supervisor_mention(policy), case=case.number, link=link, category=found
        )
        deliveries.append(ChannelPost(text=alert, target=ChannelTarget.SUPERVISORS))
        effects += [
            MarkBlockedRisk(case.number),
            Audit(case.number, AUTO, "risk", f"risk words from a blocked account: {found}"),
        ]
    return Decision(tuple(deliveries), tuple(effects))
