"""Environment -> Settings. Built by a function, never at import time, so tests can build many."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values an operator might leave in by copying an example file. Refusing them at start-up
# turns "why does nothing arrive" into one clear line naming the variable.
_PLACEHOLDER = re.compile(
    r"^(|changeme|change-me|change_me|todo|xxx+|dummy|placeholder|secret|token|your[-_ ].*|<.*>|\.\.\.)$",
    re.IGNORECASE,
)

SECRET_NAMES = (
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CHANNEL_ID",
    "SLACK_SUPERVISOR_CHANNEL_ID",
)


class SettingsError(ValueError):
    """Start-up configuration is unusable; the message names the variable."""


class Settings(BaseSettings):
    """Everything the process reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True)

    LINE_CHANNEL_SECRET: str
    LINE_CHANNEL_ACCESS_TOKEN: str
    SLACK_BOT_TOKEN: str
    SLACK_SIGNING_SECRET: str
    SLACK_CHANNEL_ID: str
    SLACK_SUPERVISOR_CHANNEL_ID: str
    REDIS_URL: str = "redis://localhost:6379/0"
    BRIDGE_CONFIG: Path = Path("config/bridge.toml")
    LINE_API_BASE_URL: str = "https://api.line.me"
    LINE_DATA_API_BASE_URL: str = "https://api-data.line.me"
    SLACK_API_BASE_URL: str = "https://slack.com/api/"

    # Worker tuning. The defaults suit production; tests shorten them.
    BRIDGE_WORKER_CONCURRENCY: int = Field(default=8, ge=1, le=256)
    BRIDGE_LEASE_SECONDS: float = Field(default=30.0, gt=0)
    BRIDGE_HTTP_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    # Redis connections one web process keeps; a burst of webhooks beyond it waits for a free
    # connection (up to 5 s) instead of failing.
    BRIDGE_WEB_REDIS_CONNECTIONS: int = Field(default=50, ge=1, le=10_000)
    BRIDGE_RETRY_GIVE_UP_SECONDS: float = Field(default=6 * 3600.0, gt=0)
    BRIDGE_RETRY_MAX_BACKOFF_SECONDS: float = Field(default=60.0, gt=0)
    BRIDGE_MAX_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)
    # How long the web process waits for a request's whole body once its headers are in: a body
    # that arrives slower (a Content-Length never reached, a stalled chunked body, a trickle) is
    # answered 408. LINE's and Slack's bodies are a few kilobytes and arrive at once.
    BRIDGE_BODY_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)
    # How often each worker refreshes the roster (the case channel's members and the supervisors'
    # user group) from Slack; joins and leaves reported by Slack apply at once in between.
    BRIDGE_ROSTER_REFRESH_SECONDS: float = Field(default=300.0, gt=0)

    @field_validator(*SECRET_NAMES)
    @classmethod
    def _not_placeholder(cls, value: str) -> str:
        if _PLACEHOLDER.match(value.strip()):
            raise ValueError("is missing or still a placeholder")
        return value.strip()

    @field_validator("SLACK_API_BASE_URL")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins base_url and method name by plain concatenation.
        return value if value.endswith("/") else value + "/"

    @field_validator("LINE_API_BASE_URL", "LINE_DATA_API_BASE_URL")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus overrides) and return Settings.

    Raises SettingsError whose message names every missing or placeholder variable
    and never repeats a secret's value.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "?"
            reason = "is not set" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise SettingsError("configuration error: " + "; ".join(problems)) from None
