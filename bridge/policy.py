"""The policy file (TOML) -> typed, validated values. No I/O beyond reading the file."""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.core.schedule import Schedule, ScheduleError

# Each text may use only these placeholders. The samples have the types the bridge passes at
# run time, so a format spec that would fail then (such as {case:s}) fails validation now.
_SERVICE = {"service": "多治見子どもLINE相談", "hotline": "0120-967-866"}
TEXT_PLACEHOLDERS: dict[str, dict[str, object]] = {
    "welcome": {**_SERVICE, "hours": "火〜金 13:00〜19:00、土 12:00〜18:00（12月29日〜1月3日はお休み）"},
    "closed_reply": {**_SERVICE, "next_opening": "火曜日 13:00"},
    "closed_reply_no_opening": {**_SERVICE},
    "busy_notice": {**_SERVICE, "place": 3},
    "case_root": {
        "case": 12,
        "opened_at": "11/30(火) 13:05",
        "state": "対応待ち（13:05から）",
        "earlier": "（以前の相談: #3, #9）",
    },
    "earlier_cases": {"cases": "#3, #9"},
    "unanswered_alert": {"mention": "<!here>", "case": 12, "minutes": 5, "link": "https://slack.com/archives/C1/p1"},
    "soft_limit_warning_note": {"minutes": 50},
    "idle_checkin": {**_SERVICE},
    "idle_closed_child": {**_SERVICE},
    "idle_closed_note": {"minutes": 10},
    "closed_how_idle": {},
    "state_held": {},
    "hold_button": {},
    "hold_note": {"user": "<@U012ABCDEF>"},
    "hold_done": {"case": 12},
    "hold_not_open": {"case": 12},
    "hold_usage": {},
    "hold_wrong_channel": {},
    "soft_limit_note": {"minutes": 60},
    "overtime_alert": {"case": 12, "minutes": 90, "link": "https://slack.com/archives/C1/p1"},
    "state_waiting": {"since": "13:05"},
    "state_waiting_closed": {"since": "12/01(火) 07:40"},
    "state_with_counsellor": {"counsellor": "<@U012ABCDEF>", "since": "13:12"},
    "state_closed": {"how": "相談者がブロック", "at": "13:50"},
    "closed_how_unfollowed": {},
    "closing_reminder": {"minutes": 15, "closing_at": "19:00"},
    "opening_digest": {"count": 2, "cases": "• #12 (12/01 07:40)\n• #13 (12/01 09:02)"},
    "opening_digest_line": {"case": 12, "arrived_at": "12/01 07:40"},
    "unfollow_note": {"case": 12},
    "edit_note": {},
    "delete_note": {},
    "closed_case_ephemeral": {"case": 12},
    "delivery_failed_note": {"reason": "LINEが受け付けませんでした (400)"},
    "opening_this_week": {"weekday": "火", "time": "13:00", "month": 12, "day": 1},
    "opening_later": {"weekday": "火", "time": "13:00", "month": 1, "day": 5},
    "hours_closures": {"closures": "12月29日〜1月3日"},
    "hours_none": {},
    "weekday_names": {},
    "media_sticker": {},
    "media_image": {},
    "media_video": {},
    "media_audio": {},
    "media_file": {},
    "media_location": {},
    "media_unknown": {},
}


class PolicyError(ValueError):
    """The policy file is unusable; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class ServiceSection(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "Asia/Tokyo"
    hotline: str = Field(min_length=1)
    note_prefix: str = Field(default="//", min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class TimeoutsSection(_Strict):
    # Silence after a counsellor's message: a check-in to the child, then the case closes.
    idle_warning_seconds: int = Field(default=480, ge=0)
    idle_close_seconds: int = Field(default=600, ge=0)

    @model_validator(mode="after")
    def _check_in_before_close(self) -> TimeoutsSection:
        if (
            self.idle_warning_seconds
            and self.idle_close_seconds
            and self.idle_warning_seconds >= self.idle_close_seconds
        ):
            raise ValueError("idle_warning_seconds must be less than idle_close_seconds (or 0)")
        return self

    # The one-hour guideline: reminders in the thread, then the supervisors are told.
    soft_limit_warning_seconds: int = Field(default=3000, ge=0)
    soft_limit_seconds: int = Field(default=3600, ge=0)
    overtime_alert_seconds: int = Field(default=5400, ge=0)
    # A case no counsellor has answered after this long is pointed out in the channel (0: never).
    unanswered_alert_seconds: int = Field(default=300, ge=0)


class RolesSection(_Strict):
    # Slack user group (S…) of the counsellors on duty, mentioned by unanswered alerts; "" means @here.
    on_duty_group: str = Field(default="", pattern=r"^(S[A-Z0-9]+)?$")


class CapacitySection(_Strict):
    # How many cases the counsellors on duty can hold at once.
    cases: int = Field(default=3, ge=1, le=1000)
    # A case no counsellor answered within this many seconds gets the busy notice (0: never).
    busy_notice_seconds: int = Field(default=180, ge=0, le=24 * 3600)
    # Open cases' threads get a reminder this many minutes before closing time (0: never).
    closing_reminder_minutes: int = Field(default=15, ge=0, le=24 * 60)


class TextsSection(_Strict):
    welcome: str
    closed_reply: str
    closed_reply_no_opening: str
    busy_notice: str
    case_root: str
    earlier_cases: str
    unanswered_alert: str
    soft_limit_warning_note: str
    idle_checkin: str
    idle_closed_child: str
    idle_closed_note: str
    closed_how_idle: str
    state_held: str
    hold_button: str
    hold_note: str
    hold_done: str
    hold_not_open: str
    hold_usage: str
    hold_wrong_channel: str
    soft_limit_note: str
    overtime_alert: str
    state_waiting: str
    state_waiting_closed: str
    state_with_counsellor: str
    state_closed: str
    closed_how_unfollowed: str
    closing_reminder: str
    opening_digest: str
    opening_digest_line: str
    unfollow_note: str
    edit_note: str
    delete_note: str
    closed_case_ephemeral: str
    delivery_failed_note: str
    # How the next opening and the hours are worded for the child.
    opening_this_week: str = "{weekday}曜日 {time}"
    opening_later: str = "{month}月{day}日({weekday}) {time}"
    hours_closures: str = "（{closures}はお休み）"
    hours_none: str = "受付時間は決まっていません"
    weekday_names: str = Field(default="月火水木金土日", min_length=7, max_length=7)
    # What the thread shows for a child's non-text message, e.g. [スタンプ: OK] or [動画 0:12].
    media_sticker: str = "スタンプ"
    media_image: str = "画像"
    media_video: str = "動画"
    media_audio: str = "音声"
    media_file: str = "ファイル"
    media_location: str = "位置情報"
    media_unknown: str = "未対応のメッセージ"

    @field_validator("*")
    @classmethod
    def _placeholders_known(cls, value: str, info: Any) -> str:
        allowed = TEXT_PLACEHOLDERS[info.field_name]
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc})") from None
        unknown = sorted(fields - set(allowed))
        if unknown:
            known = ", ".join("{" + name + "}" for name in allowed) or "none"
            raise ValueError(f"uses unknown placeholder {{{unknown[0]}}} (allowed: {known})")
        try:
            value.format_map(allowed)
        except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            raise ValueError(f"cannot be rendered ({exc})") from None
        return value.strip()


class _PolicyFile(_Strict):
    service: ServiceSection
    hours: dict[str, Any] = Field(default_factory=dict)
    capacity: CapacitySection = Field(default_factory=CapacitySection)
    timeouts: TimeoutsSection = Field(default_factory=TimeoutsSection)
    roles: RolesSection = Field(default_factory=RolesSection)
    texts: TextsSection


@dataclass(frozen=True)
class Policy:
    """The service policy as the core uses it."""

    service_name: str
    timezone: ZoneInfo
    hotline: str
    note_prefix: str
    texts: TextsSection
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

    def hours_summary(self) -> str:
        """The weekly hours in the policy's words, for the welcome text."""
        return self.schedule.summary(
            closures=self.texts.hours_closures, none=self.texts.hours_none, weekdays=self.texts.weekday_names
        )

    def format_opening(self, at: datetime, now: datetime) -> str:
        """When the service next opens, in the policy's words ("火曜日 13:00")."""
        return self.schedule.format_opening(
            at,
            now,
            this_week=self.texts.opening_this_week,
            later=self.texts.opening_later,
            weekdays=self.texts.weekday_names,
        )

    def media_labels(self) -> dict[str, str]:
        """The words for non-text messages, by LINE message type."""
        kinds = ("sticker", "image", "video", "audio", "file", "location", "unknown")
        return {kind: getattr(self.texts, f"media_{kind}") for kind in kinds}

    def render(self, text_name: str, **values: object) -> str:
        """Render a named text with its placeholders; unknown names raise KeyError."""
        template: str = getattr(self.texts, text_name)
        defaults = {"service": self.service_name, "hotline": self.hotline, "hours": self.hours_summary()}
        return template.format_map({**defaults, **values})


def parse_policy(raw: dict[str, Any]) -> Policy:
    """Validate a parsed TOML document. Raises PolicyError naming the offending key."""
    try:
        parsed = _PolicyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "is required"
        elif first["type"] == "extra_forbidden":
            message = "is not a known setting"
        raise PolicyError(f"{key}: {message}") from None
    zone = ZoneInfo(parsed.service.timezone)
    try:
        schedule = Schedule.from_config(parsed.hours, zone)
    except ScheduleError as exc:
        raise PolicyError(f"hours.{exc}") from None
    return Policy(
        service_name=parsed.service.name,
        timezone=zone,
        hotline=parsed.service.hotline,
        note_prefix=parsed.service.note_prefix,
        texts=parsed.texts,
        schedule=schedule,
        capacity=parsed.capacity.cases,
        busy_notice_seconds=parsed.capacity.busy_notice_seconds,
        closing_reminder_minutes=parsed.capacity.closing_reminder_minutes,
        idle_warning_seconds=parsed.timeouts.idle_warning_seconds,
        idle_close_seconds=parsed.timeouts.idle_close_seconds,
        soft_limit_warning_seconds=parsed.timeouts.soft_limit_warning_seconds,
        soft_limit_seconds=parsed.timeouts.soft_limit_seconds,
        overtime_alert_seconds=parsed.timeouts.overtime_alert_seconds,
        unanswered_alert_seconds=parsed.timeouts.unanswered_alert_seconds,
        on_duty_group=parsed.roles.on_duty_group,
    )


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at path. Raises PolicyError with a clear message."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    try:
        return parse_policy(raw)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from None


def describe_policy(policy: Policy) -> str:
    """A human-readable account of the policy, each text rendered with sample values."""
    busy = (
        f"after {policy.busy_notice_seconds} s without a counsellor's answer, or at once when full"
        if policy.busy_notice_seconds
        else "only when a case arrives while capacity is full"
    )
    reminder = (
        f"{policy.closing_reminder_minutes} min before closing, in every open case's thread"
        if policy.closing_reminder_minutes
        else "off"
    )
    lines = [
        f"service:      {policy.service_name}",
        f"timezone:     {policy.timezone.key}",
        f"hotline:      {policy.hotline}",
        f"note prefix:  thread replies starting with {policy.note_prefix!r} stay in Slack",
        f"hours:        {policy.hours_summary()}",
        f"capacity:     {policy.capacity} cases at once",
        f"busy notice:  {busy}",
        f"closing reminder: {reminder}",
        "",
        "texts (rendered with sample values):",
    ]
    for name, samples in TEXT_PLACEHOLDERS.items():
        rendered = policy.render(name, **samples)
        lines.append(f"--- {name}")
        lines.extend("    " + line for line in rendered.splitlines())
    return "\n".join(lines)
