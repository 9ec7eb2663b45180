"""The policy file (TOML) -> typed, validated values. No I/O beyond reading the file."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from bridge.config.safety import SafetySection, build_safety
from bridge.core.ids import SlackUserId
from bridge.core.parts import Text, compose
from bridge.core.policy import Policy
from bridge.core.schedule.model import Schedule
from bridge.core.schedule.parse import ScheduleError
from bridge.core.texts import POLICY_VALUES, TEXTS


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


# A Slack channel ID as Slack writes it: C (or G, for private channels made before 2021), then
# capital letters and digits.
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,20}")
MAX_CASE_CHANNELS = 50


def _shown(value: str) -> str:
    """A value from the file for an error line: quoted, escaped, and cut short."""
    return repr(value[:24]) + ("…" if len(value) > 24 else "")


class SlackSection(_Strict):
    # The pool of case channels, SLACK_CHANNEL_ID first (checked at start, case_channels_for);
    # empty: SLACK_CHANNEL_ID alone.
    case_channels: tuple[str, ...] = Field(default=(), max_length=MAX_CASE_CHANNELS)

    @field_validator("case_channels")
    @classmethod
    def _channel_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for number, channel in enumerate(value, start=1):
            if not _CHANNEL_ID.fullmatch(channel):
                raise ValueError(
                    f"entry {number}, {_shown(channel)}, is not a Slack channel ID (C or G, then 2 to 20"
                    " capital letters and digits)"
                )
            if channel in seen:
                raise ValueError(f"entry {number}, {_shown(channel)}, is listed twice")
            seen.add(channel)
        return value


class FloodsSection(_Strict):
    # More than max_stickers stickers, or more than max_messages messages, from one child within
    # window_seconds: the surplus is deferred (kept from the thread) for cooldown_seconds (0: never).
    max_stickers: int = Field(default=5, ge=0)
    max_messages: int = Field(default=20, ge=0)
    window_seconds: int = Field(default=60, ge=1, le=3600)
    cooldown_seconds: int = Field(default=300, ge=1, le=24 * 3600)


class RetentionSection(_Strict):
    # A closed case keeps the child's LINE user ID this many days, then only its pseudonym remains.
    closed_case_days: int = Field(default=30, ge=0, le=3650)
    # A closed case's record (its times, state, thread and place in the child's history) is deleted
    # this many days after it closed; the case a block was made from stays while the block does.
    case_record_days: int = Field(default=365, ge=1, le=3650)
    # A block this many days old is pointed out in the supervisors' channel, and again every this
    # many days until a supervisor lifts it (0: never).
    block_review_days: int = Field(default=90, ge=0, le=3650)
    # A case nobody answered for this many hours of the service's time (counted from when the
    # service could first answer it) is closed with a note in its thread. 0 turns it off.
    unanswered_close_hours: int = Field(default=72, ge=0, le=24 * 365)
    # What was set aside for an operator (an event the router could not decide, a child's message
    # Slack refused) is dropped after this many days.
    set_aside_days: int = Field(default=14, ge=1, le=365)


class AuditSection(_Strict):
    # How long the record of control actions and automatic flags is kept.
    retention_days: int = Field(default=365, ge=1, le=3650)


class CapacitySection(_Strict):
    # How many cases the counsellors on duty can take on at once.
    cases: int = Field(default=3, ge=1, le=1000)
    # A case no counsellor answered within this many seconds gets the busy notice (0: never).
    busy_notice_seconds: int = Field(default=180, ge=0, le=24 * 3600)
    # Open cases' threads get a reminder this many minutes before closing time (0: never).
    closing_reminder_minutes: int = Field(default=15, ge=0, le=24 * 60)


def _check_text(name: str, value: str) -> str:
    """A text from the file: a valid template using only its own placeholders (see TEXTS)."""
    spec = TEXTS[name]
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc})") from None
    unknown = sorted(fields - set(spec.samples))
    if unknown:
        known = ", ".join("{" + placeholder + "}" for placeholder in spec.samples) or "none"
        raise ValueError(f"uses unknown placeholder {{{unknown[0]}}} (allowed: {known})")
    try:
        compose(value, spec.samples)  # as Policy.render_parts fills it at run time
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot be rendered ({exc})") from None
    if spec.length is not None and len(value) != spec.length:
        raise ValueError(f"must be exactly {spec.length} characters")
    return value.strip()


class _TextsBase(_Strict):
    @field_validator("*")
    @classmethod
    def _placeholders_known(cls, value: str, info: Any) -> str:
        return _check_text(str(info.field_name), value)


# The [texts] schema, made from the one table of texts: a field per text, required unless the
# table gives a default.
_TextsSection: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "TextsSection",
    __base__=_TextsBase,
    **{name: (str, ... if spec.default is None else spec.default) for name, spec in TEXTS.items()},
)


class _PolicyFile(_Strict):
    service: ServiceSection
    hours: dict[str, Any] = Field(default_factory=dict)
    capacity: CapacitySection = Field(default_factory=CapacitySection)
    timeouts: TimeoutsSection = Field(default_factory=TimeoutsSection)
    roles: RolesSection = Field(default_factory=RolesSection)
    slack: SlackSection = Field(default_factory=SlackSection)
    safety: SafetySection = Field(default_factory=SafetySection)
    floods: FloodsSection = Field(default_factory=FloodsSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)
    texts: dict[str, Any]  # validated by _TextsSection, which is made at run time


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(model: type[_Model], raw: Any, *, prefix: str) -> _Model:
    """The model validated from raw, or PolicyError naming the first offending key."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = prefix + ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "is required"
        elif first["type"] == "extra_forbidden":
            message = "is not a known setting"
        raise PolicyError(f"{key}: {message}") from None


def parse_policy(raw: dict[str, Any]) -> Policy:
    """Validate a parsed TOML document. Raises PolicyError naming the offending key."""
    parsed = _validated(_PolicyFile, raw, prefix="")
    texts = _validated(_TextsSection, parsed.texts, prefix="texts.")
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
        texts=MappingProxyType(texts.model_dump()),
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
        supervisors=frozenset(SlackUserId(user) for user in parsed.roles.supervisors),
        supervisor_group=parsed.roles.supervisor_group,
        case_channels=parsed.slack.case_channels,
        safety=build_safety(parsed.safety),
        flood_max_stickers=parsed.floods.max_stickers,
        flood_max_messages=parsed.floods.max_messages,
        flood_window_seconds=parsed.floods.window_seconds,
        flood_cooldown_seconds=parsed.floods.cooldown_seconds,
        audit_retention_days=parsed.audit.retention_days,
        closed_case_days=parsed.retention.closed_case_days,
        case_record_days=parsed.retention.case_record_days,
        block_review_days=parsed.retention.block_review_days,
        unanswered_close_hours=parsed.retention.unanswered_close_hours,
        set_aside_days=parsed.retention.set_aside_days,
    )


def case_channels_for(policy: Policy, default: str) -> tuple[str, ...]:
    """Every channel cases open in, default (SLACK_CHANNEL_ID) first: default alone, or the
    policy's pool, which must list default first. Raises PolicyError naming both otherwise."""
    if not policy.case_channels:
        return (default,)
    if policy.case_channels[0] != default:
        raise PolicyError(
            f"slack.case_channels: must list SLACK_CHANNEL_ID ({_shown(default)}) first,"
            f" not {_shown(policy.case_channels[0])}"
        )
    return policy.case_channels


def _describe_channels(policy: Policy) -> str:
    if len(policy.case_channels) < 2:
        return "SLACK_CHANNEL_ID alone"
    shown = ", ".join(policy.case_channels)
    return f"{len(policy.case_channels)} channels in turn: {shown} (the first must be SLACK_CHANNEL_ID)"


def _describe_safety(policy: Policy) -> str:
    safety = policy.safety
    if not safety.categories:
        return "none: no message alerts anyone"
    shown = "; ".join(f"{c.label} ({c.level.value}, {len(c.expressions)} expressions)" for c in safety.categories)
    return f"{shown}; {len(safety.calm_expressions)} calm phrases taken out first"


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


def _describe_floods(policy: Policy) -> str:
    limits = [
        f"more than {limit} {what}"
        for limit, what in ((policy.flood_max_stickers, "stickers"), (policy.flood_max_messages, "messages"))
        if limit
    ]
    if not limits:
        return "off (no limit on stickers or messages)"
    return (
        f"{' or '.join(limits)} from one child in {policy.flood_window_seconds} s are deferred"
        f" for {policy.flood_cooldown_seconds} s"
    )


def describe_policy(policy: Policy, *, show: Callable[[Text], str]) -> str:
    """A human-readable account of the policy, each text rendered with sample values and shown
    as the chat shows it (show renders a text's mentions and links)."""
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
        f"case channels: {_describe_channels(policy)}",
        f"risk words:   {_describe_safety(policy)}",
        f"floods:       {_describe_floods(policy)}",
        f"audit:        records kept {policy.audit_retention_days} days",
        f"retention:    a closed case's LINE user ID is erased after {policy.closed_case_days} days, its record"
        f" after {policy.case_record_days} (the case a block was made from stays while the block does); "
        + (
            f"a case nobody answered is closed after {policy.unanswered_close_hours} hours"
            if policy.unanswered_close_hours
            else "a case nobody answered stays open"
        )
        + f"; what was set aside for an operator is dropped after {policy.set_aside_days} days",
        "block review: "
        + (
            f"a block is pointed out to the supervisors after {policy.block_review_days} days, and again as often"
            if policy.block_review_days
            else "off"
        ),
        "",
        "texts (rendered with this file's service, hotline and hours, and sample values for the rest):",
    ]
    for name, spec in TEXTS.items():
        # The file's own values where it has them; samples only for what differs per case.
        per_case = {key: value for key, value in spec.samples.items() if key not in POLICY_VALUES}
        rendered = show(policy.render_parts(name, **per_case))
        lines.append(f"--- {name}")
        lines.extend("    " + line for line in rendered.splitlines())
    return "\n".join(lines)
