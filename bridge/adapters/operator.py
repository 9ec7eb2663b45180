"""Requests an operator makes on the command line (`bridge purge`), as inbound entries: the
command records one in the inbound stream, and the router decides it in order with everything
else (load, decide, commit), as it does a Slack control request."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bridge.core.events import Ignored, InboundEvent, PurgeRequested
from bridge.core.ids import CaseNumber

SOURCE = "ops"  # the inbound entries' source
PURGE = "purge"

# An operator's name as the audit keeps it: letters (any script), digits, and . _ @ -.
_OPERATOR = re.compile(r"[\w.@-]{1,64}")


def valid_operator(name: str) -> bool:
    return _OPERATOR.fullmatch(name) is not None


def purge_request(case: CaseNumber, operator: str) -> str:
    """The body of a purge request's inbound entry. ValueError for a name that is not plain."""
    if not valid_operator(operator):
        raise ValueError("an operator's name is 1 to 64 letters, digits or . _ @ -")
    return json.dumps({"type": PURGE, "case": int(case), "operator": operator}, ensure_ascii=False)


def parse_event(raw: Mapping[str, Any]) -> InboundEvent:
    """An operator's request as a core event. Never raises."""
    if raw.get("type") != PURGE:
        return Ignored("unknown operator request")
    case, operator = raw.get("case"), raw.get("operator")
    if not isinstance(case, int) or isinstance(case, bool) or case < 1:
        return Ignored("purge request without a case number")
    if not isinstance(operator, str) or not valid_operator(operator):
        return Ignored("purge request without an operator's name")
    return PurgeRequested(case=CaseNumber(case), operator=operator)
