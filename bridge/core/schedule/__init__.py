"""The service's opening hours, as pure functions, one module per concept.

* :mod:`.days`: weekdays, a :class:`~.days.Window` within one day, month-days.
* :mod:`.parse`: the ``[hours]`` table of the policy file, validated (:class:`~.parse.ScheduleError`).
* :mod:`.model`: the :class:`~.model.Schedule` value; which windows a day has, why a day is
  closed, whether the service is open at an instant, when it next opens or closes.
* :mod:`.wording`: the hours in words, for the child (:func:`~.wording.summary`,
  :func:`~.wording.format_opening`) and for an operator (:func:`~.wording.week_report`).

Nothing here reads the clock or does any I/O. This package re-exports the names that
``bridge.core.schedule`` offered before it was split; new code imports from the module that
defines a name.
"""

from __future__ import annotations

from bridge.core.schedule.days import WEEKDAYS, Window
from bridge.core.schedule.model import HORIZON_DAYS, Schedule
from bridge.core.schedule.parse import DEFAULT_HOURS, DEFAULT_TIMEZONE, ScheduleError

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_TIMEZONE",
    "HORIZON_DAYS",
    "WEEKDAYS",
    "Schedule",
    "ScheduleError",
    "Window",
]
