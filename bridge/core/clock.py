"""Instants as the service's own clock shows them (the policy's time zone and weekday names)."""

from __future__ import annotations

from datetime import datetime

from bridge.core.policy import Policy


def local(at: float, policy: Policy) -> datetime:
    return datetime.fromtimestamp(at, policy.timezone)


def day_time(at: float, policy: Policy) -> str:
    """ "12/01(火) 13:05": the date, the policy's weekday name, the time."""
    moment = local(at, policy)
    weekday = policy.texts["weekday_names"][moment.weekday()]
    return f"{moment:%m/%d}({weekday}) {moment:%H:%M}"
