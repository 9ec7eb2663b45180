"""Instants as the service's own clock shows them (the policy's time zone)."""

from __future__ import annotations

from datetime import datetime

from bridge.core.policy import Policy


def local(at: float, policy: Policy) -> datetime:
    return datetime.fromtimestamp(at, policy.timezone)


def day_time(at: float, policy: Policy) -> str:
    moment = local(at, policy)
    return moment.strftime(f"%m/%d({'月火水木金土日'[moment.weekday()]}) %H:%M")
