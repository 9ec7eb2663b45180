"""The service's policy as the core sees it: a plain frozen value.

Reading and validating the policy file is the config adapter's job (bridge/config/policy_file.py);
the core only reads these fields and renders the texts named in bridge/core/texts.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.core.ids import SlackUserId
from bridge.core.parts import Text, compose, plain
from bridge.core.rules.risk import Safety
from bridge.core.schedule import wording
from bridge.core.schedule.model import Schedule


@dataclass(frozen=True)
class Policy:
    """The service policy as the core uses it."""

    service_name: str
    timezone: ZoneInfo
    hotline: str
    note_prefix: str
    texts: Mapping[str, str]  # every name in bridge.core.texts.TEXTS
    schedule: Schedule
    capacity: int = 3
    busy_notice_seconds: int = 180
    closing_reminder_minutes: int = 15
    idle_warning_seconds: int = 480
    idle_close_seconds: int = 600
    soft_limit_warning_seconds: int = 3000
    soft_limit_seconds: int = 3600
    overtime_alert_seconds: int = 5400
    unanswered_alert_seconds: int = 300
    on_duty_group: str = ""
    supervisors: frozenset[SlackUserId] = frozenset()
    supervisor_group: str = ""
    # The pool of case channels, SLACK_CHANNEL_ID first (the start checks it); () or one channel:
    # every case in SLACK_CHANNEL_ID, stored as before pools (bridge/core/channels.py).
    case_channels: tuple[str, ...] = ()
    safety: Safety = field(default_factory=Safety)  # the categories of risk and the calm phrases
    flood_max_stickers: int = 5
    flood_max_messages: int = 20
    flood_window_seconds: int = 60
    flood_cooldown_seconds: int = 300
    audit_retention_days: int = 365
    closed_case_days: int = 30
    case_record_days: int = 365  # then a closed case's record goes (not the case a block was made from)
    block_review_days: int = 90  # a block this old is pointed out to the supervisors, and again as often (0: never)
    unanswered_close_hours: int = 72  # 0: a case nobody answered stays open
    set_aside_days: int = 14  # what was set aside for an operator is dropped after this many days

    def hours_summary(self) -> str:
        """The weekly hours in the policy's words, for the welcome text."""
        return wording.summary(
            self.schedule,
            closures=self.texts["hours_closures"],
            none=self.texts["hours_none"],
            weekdays=self.texts["weekday_names"],
        )

    def format_opening(self, at: datetime, now: datetime) -> str:
        """When the service next opens, in the policy's words ("火曜日 13:00")."""
        return wording.format_opening(
            self.schedule,
            at,
            now,
            this_week=self.texts["opening_this_week"],
            later=self.texts["opening_later"],
            weekdays=self.texts["weekday_names"],
        )

    def media_labels(self) -> dict[str, str]:
        """The words for non-text messages, by LINE message type."""
        kinds = ("sticker", "image", "video", "audio", "file", "location", "unknown")
        return {kind: self.texts[f"media_{kind}"] for kind in kinds}

    def render(self, text_name: str, **values: object) -> str:
        """Render a named text of words only (for the child, a button, a window); an unknown
        name raises KeyError, a mention or link among the values TypeError."""
        return plain(self.render_parts(text_name, **values))

    def render_parts(self, text_name: str, **values: object) -> Text:
        """Render a named text for the counsellors: a mention, link or text among the values
        stays a part of it, for the chat adapter to render. An unknown name raises KeyError."""
        defaults = {"service": self.service_name, "hotline": self.hotline, "hours": self.hours_summary()}
        return compose(self.texts[text_name], {**defaults, **values})
