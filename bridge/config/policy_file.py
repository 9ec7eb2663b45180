"""The policy file (TOML) -> typed, validated values. No I/O beyond reading the file."""

from __future__ import annotations

import re
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
    "control_wrong_channel": {"command": "/close"},
    "close_button": {},
    "escalate_button": {},
    "block_button": {},
    "unblock_button": {},
    "close_confirm": {"case": 12},
    "closed_by_counsellor_child": {**_SERVICE},
    "close_note": {"user": "<@U012ABCDEF>", "memo": "（メモ: 学校に相談予定）"},
    "close_memo": {"memo": "学校に相談予定"},
    "close_done": {"case": 12},
    "closed_how_counsellor": {"user": "<@U012ABCDEF>"},
    "closed_how_blocked": {},
    "usage_close": {},
    "usage_block": {},
    "usage_unblock": {},
    "usage_escalate": {},
    "control_not_member": {},
    "control_roster_unknown": {},
    "control_supervisors_only": {},
    "control_unknown_case": {"case": 12},
    "control_case_closed": {"case": 12},
    "control_no_case": {},
    "escalation_alert": {
        "mention": "<!subteam^S012ABC> ",
        "case": 12,
        "reason": "自傷をほのめかしている",
        "user": "<@U012ABCDEF>",
        "link": "https://slack.com/archives/C1/p1",
    },
    "escalation_note": {"user": "<@U012ABCDEF>", "reason": "自傷をほのめかしている"},
    "escalate_done": {"case": 12},
    "emergency_checklist": {**_SERVICE},
    "state_urgent": {},
    "risk_alert": {"mention": "<!subteam^S012ABC> ", "case": 12, "link": "https://slack.com/archives/C1/p1"},
    "risk_note": {},
    "blocked_risk_alert": {"mention": "<!subteam^S012ABC> ", "case": 12, "link": "https://slack.com/archives/C1/p1"},
    "crisis_lines": {**_SERVICE},
    "block_note": {"user": "<@U012ABCDEF>", "at": "11/30(火) 14:05", "reason": "無関係な投稿の連続"},
    "block_done": {"case": 12},
    "block_already": {"case": 12},
    "state_blocked": {"count": 3},
    "unblock_note": {"user": "<@U012ABCDEF>"},
    "unblock_done": {"case": 12},
    "unblock_not_blocked": {"case": 12},
    "cases_header": {"count": 2},
    "cases_line": {"case": 12, "state": "対応待ち（13:05から）", "waited": 7, "counsellor": "<@U012ABCDEF>"},
    "cases_nobody": {},
    "cases_none": {},
    "flood_notice_child": {**_SERVICE},
    "flood_note": {"until": "14:10"},
    "flood_alert": {"case": 12, "until": "14:10", "link": "https://slack.com/archives/C1/p1"},
    "flood_released_note": {"messages": 4, "stickers": 31},
    "state_flood": {"until": "14:10"},
    "modal_title": {},
    "modal_submit": {},
    "modal_action_label": {},
    "modal_reason_label": {},
    "modal_case_label": {"case": 12},
    "modal_reason_required": {},
    "action_close": {},
    "action_escalate": {},
    "action_block": {},
    "action_unblock": {},
    "action_hold": {},
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
    # Who may block and unblock accounts: Slack user IDs, and/or the members of a user group
    # (which escalations also mention).
    supervisors: tuple[str, ...] = ()
    supervisor_group: str = Field(default="", pattern=r"^(S[A-Z0-9]+)?$")

    @field_validator("supervisors")
    @classmethod
    def _user_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user in value:
            if not re.fullmatch(r"[UW][A-Z0-9]+", user):
                raise ValueError(f"{user!r} is not a Slack user ID (U… or W…)")
        return value


class SafetySection(_Strict):
    # Regular expressions that mark a child's message as a possible risk to life or body. They
    # are matched after normalisation (see bridge/core/safety.py): NFKC, katakana as hiragana,
    # lower case, no spaces or punctuation.
    risk_expressions: tuple[str, ...] = ()

    @field_validator("risk_expressions")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for expression in value:
            try:
                re.compile(expression)
            except re.error as exc:
                raise ValueError(f"{expression!r} is not a valid regular expression ({exc})") from None
            if re.fullmatch(expression, ""):
                raise ValueError(f"{expression!r} matches an empty message")
        return value


class FloodsSection(_Strict):
    # More than max_stickers stickers, or more than max_messages messages, from one child within
    # window_seconds: the surplus is held back from the thread for cooldown_seconds (0: never).
    max_stickers: int = Field(default=5, ge=0)
    max_messages: int = Field(default=20, ge=0)
    window_seconds: int = Field(default=60, ge=1, le=3600)
    cooldown_seconds: int = Field(default=300, ge=1, le=24 * 3600)


class RetentionSection(_Strict):
    # A closed case keeps the child's LINE user ID this many days, then only its pseudonym remains.
    closed_case_days: int = Field(default=30, ge=0, le=3650)


class AuditSection(_Strict):
    # How long the record of control actions and automatic flags is kept.
    retention_days: int = Field(default=365, ge=1, le=3650)


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
    control_wrong_channel: str
    close_button: str
    escalate_button: str
    block_button: str
    unblock_button: str
    close_confirm: str
    closed_by_counsellor_child: str
    close_note: str
    close_memo: str
    close_done: str
    closed_how_counsellor: str
    closed_how_blocked: str
    usage_close: str
    usage_block: str
    usage_unblock: str
    usage_escalate: str
    control_not_member: str
    control_roster_unknown: str
    control_supervisors_only: str
    control_unknown_case: str
    control_case_closed: str
    control_no_case: str
    escalation_alert: str
    escalation_note: str
    escalate_done: str
    emergency_checklist: str
    state_urgent: str
    risk_alert: str
    risk_note: str
    blocked_risk_alert: str
    crisis_lines: str
    block_note: str
    block_done: str
    block_already: str
    state_blocked: str
    unblock_note: str
    unblock_done: str
    unblock_not_blocked: str
    cases_header: str
    cases_line: str
    cases_nobody: str
    cases_none: str
    flood_notice_child: str
    flood_note: str
    flood_alert: str
    flood_released_note: str
    state_flood: str
    modal_title: str
    modal_submit: str
    modal_action_label: str
    modal_reason_label: str
    modal_case_label: str
    modal_reason_required: str
    action_close: str
    action_escalate: str
    action_block: str
    action_unblock: str
    action_hold: str
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
    safety: SafetySection = Field(default_factory=SafetySection)
    floods: FloodsSection = Field(default_factory=FloodsSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)
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
    supervisors: frozenset[str] = frozenset()
    supervisor_group: str = ""
    risk_expressions: tuple[str, ...] = ()
    flood_max_stickers: int = 5
    flood_max_messages: int = 20
    flood_window_seconds: int = 60
    flood_cooldown_seconds: int = 300
    audit_retention_days: int = 365
    closed_case_days: int = 30

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
        supervisors=frozenset(parsed.roles.supervisors),
        supervisor_group=parsed.roles.supervisor_group,
        risk_expressions=parsed.safety.risk_expressions,
        flood_max_stickers=parsed.floods.max_stickers,
        flood_max_messages=parsed.floods.max_messages,
        flood_window_seconds=parsed.floods.window_seconds,
        flood_cooldown_seconds=parsed.floods.cooldown_seconds,
        audit_retention_days=parsed.audit.retention_days,
        closed_case_days=parsed.retention.closed_case_days,
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


# Placeholders every text may use, filled from the policy itself (see Policy.render).
_POLICY_VALUES = frozenset({"service", "hotline", "hours"})


def _describe_floods(policy: Policy) -> str:
    limits = [
        f"more than {limit} {what}"
        for limit, what in ((policy.flood_max_stickers, "stickers"), (policy.flood_max_messages, "messages"))
        if limit
    ]
    if not limits:
        return "off (no limit on stickers or messages)"
    return (
        f"{' or '.join(limits)} from one child in {policy.flood_window_seconds} s are held back"
        f" for {policy.flood_cooldown_seconds} s"
    )


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
        f"supervisors:  {', '.join(sorted(policy.supervisors)) or 'none by ID'}"
        + (f"; members of user group {policy.supervisor_group}" if policy.supervisor_group else ""),
        f"risk words:   {len(policy.risk_expressions)} expressions",
        f"floods:       {_describe_floods(policy)}",
        f"audit:        records kept {policy.audit_retention_days} days",
        f"retention:    a closed case's LINE user ID is erased after {policy.closed_case_days} days",
        "",
        "texts (rendered with this file's service, hotline and hours, and sample values for the rest):",
    ]
    for name, samples in TEXT_PLACEHOLDERS.items():
        # The file's own values where it has them; samples only for what differs per case.
        per_case = {key: value for key, value in samples.items() if key not in _POLICY_VALUES}
        rendered = policy.render(name, **per_case)
        lines.append(f"--- {name}")
        lines.extend("    " + line for line in rendered.splitlines())
    return "\n".join(lines)
