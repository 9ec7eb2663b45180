"""Environment -> Settings. Built by a function, never at import time, so tests can build many."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.config.redis_url import DEFAULT_URL, RedisTarget, RedisUrlError, cluster_flag, parse_redis_url

# Values an operator might leave in by copying an example file. Refusing them at start-up
# turns "why does nothing arrive" into one clear line naming the variable.
_PLACEHOLDER = re.compile(
    r"^(|changeme|change-me|change_me|todo|xxx+|dummy|placeholder|secret|token|your[-_ ].*|<.*>|\.\.\.)$",
    re.IGNORECASE,
)

# The credentials: SecretStr, so that a repr of the settings (a traceback, a debugger, a log line
# that prints them) shows ********** instead. Each use unwraps its own with .get_secret_value().
SECRET_NAMES = (
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "BRIDGE_PSEUDONYM_KEY",
)
# Not secret, but as easy to leave at an example's placeholder.
REQUIRED_NAMES = ("SLACK_CHANNEL_ID", "SLACK_SUPERVISOR_CHANNEL_ID")

# Every call to these carries a bearer token, so they must be https. Plain http is allowed only to
# this machine, where the tests and the demo run their fake LINE and Slack servers.
BASE_URL_NAMES = ("LINE_API_BASE_URL", "LINE_DATA_API_BASE_URL", "SLACK_API_BASE_URL")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


# The key of the HMAC that turns a LINE user ID into the pseudonym in Redis key names: at least
# this many random bytes, written in hex or base64.
PSEUDONYM_KEY_MIN_BYTES = 32
_HEX_DIGITS = re.compile(r"(?:[0-9a-fA-F]{2})+")


def pseudonym_key_bytes(value: str) -> bytes:
    """The bytes of BRIDGE_PSEUDONYM_KEY's value: hex if it is an even number of hex digits, else
    base64 (standard or URL-safe alphabet, with its padding). The pseudonyms are keyed by these
    bytes, so the same bytes in either form give the same pseudonyms. Raises ValueError, whose
    message never repeats the value."""
    value = value.strip()
    if _HEX_DIGITS.fullmatch(value):
        key = bytes.fromhex(value)
    else:
        try:
            key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is neither hex nor base64 (make a key with: bridge pseudonym-key new)") from None
    if len(key) < PSEUDONYM_KEY_MIN_BYTES:
        raise ValueError(
            f"is {len(key)} bytes; at least {PSEUDONYM_KEY_MIN_BYTES} random bytes are needed"
            " (make a key with: bridge pseudonym-key new)"
        )
    return key


def _not_placeholder(value: str) -> str:
    if _PLACEHOLDER.match(value.strip()):
        raise ValueError("is missing or still a placeholder")
    return value.strip()


def _checked_base_url(value: str) -> str:
    """value if it is an https URL (or http to a loopback host); the error never repeats it."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number (or out of range) raises here
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an https URL with a host (e.g. https://api.line.me)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError("must be https (plain http is allowed only to 127.0.0.1, localhost or ::1)")
    return value


class SettingsError(ValueError):
    """Start-up configuration is unusable; the message names the variable."""


class Settings(BaseSettings):
    """Everything the process reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True)

    LINE_CHANNEL_SECRET: SecretStr
    LINE_CHANNEL_ACCESS_TOKEN: SecretStr
    SLACK_BOT_TOKEN: SecretStr
    SLACK_SIGNING_SECRET: SecretStr
    SLACK_CHANNEL_ID: str
    SLACK_SUPERVISOR_CHANNEL_ID: str
    # The pseudonyms' key (see pseudonym_key_bytes). Every process of a deployment has the same
    # one for good: another key would not find any child's open case, block or history.
    BRIDGE_PSEUDONYM_KEY: SecretStr
    # Where Redis is (config/redis_url.py): one server, or a Redis Cluster (redis+cluster://host:port,
    # host:port..., or a redis:// URL with REDIS_CLUSTER=1). Declared first: REDIS_URL's check reads it.
    REDIS_CLUSTER: bool = False
    # Secret too: a managed Redis's URL carries its password (redis://:PASSWORD@host:port/0).
    REDIS_URL: SecretStr = SecretStr(DEFAULT_URL)
    BRIDGE_CONFIG: Path = Path("config/bridge.toml")
    LINE_API_BASE_URL: str = "https://api.line.me"
    LINE_DATA_API_BASE_URL: str = "https://api-data.line.me"
    SLACK_API_BASE_URL: str = "https://slack.com/api/"

    # Worker tuning. The defaults suit production; tests shorten them.
    BRIDGE_WORKER_CONCURRENCY: int = Field(default=8, ge=1, le=256)
    BRIDGE_LEASE_SECONDS: float = Field(default=30.0, gt=0)
    # How many partitions the inbound stream has, so that several workers decide at once
    # (adapters/redis/partitions.py). Every process of a deployment must have the same count.
    BRIDGE_ROUTER_PARTITIONS: int = Field(default=1, ge=1, le=64)
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
    # Where the worker serves its metrics (bridge/metrics/server.py): PORT when the environment
    # gives one (a Procfile runner gives each process its own), else BRIDGE_METRICS_PORT, else
    # nowhere. 0 takes any free port. The web process serves its metrics on its own port.
    PORT: int | None = Field(default=None, ge=0, le=65535)
    BRIDGE_METRICS_PORT: int | None = Field(default=None, ge=0, le=65535)
    # Posts into one Slack channel (chat.postMessage): Slack documents about one a second with short
    # bursts, and answers 429 beyond. The bridge paces itself under that, leaving one of Slack's
    # burst of three as room for the jitter between its clock and Slack's. 0 turns pacing off.
    BRIDGE_SLACK_CHANNEL_POSTS_PER_SECOND: float = Field(default=1.0, ge=0, le=1000)
    BRIDGE_SLACK_CHANNEL_BURST: int = Field(default=2, ge=1, le=100)

    @field_validator(*SECRET_NAMES)
    @classmethod
    def _secret_not_placeholder(cls, value: SecretStr) -> SecretStr:
        return SecretStr(_not_placeholder(value.get_secret_value()))

    @field_validator("BRIDGE_PSEUDONYM_KEY")
    @classmethod
    def _pseudonym_key(cls, value: SecretStr) -> SecretStr:
        pseudonym_key_bytes(value.get_secret_value())  # refuses a key too short or not hex/base64
        return value

    @field_validator("REDIS_CLUSTER", mode="before")
    @classmethod
    def _redis_cluster(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return cluster_flag(value)
            except RedisUrlError as exc:
                raise ValueError(str(exc).removeprefix("REDIS_CLUSTER ")) from None
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        try:
            parse_redis_url(value.get_secret_value(), cluster=bool(info.data.get("REDIS_CLUSTER")))
        except RedisUrlError as exc:
            raise ValueError(str(exc).removeprefix("REDIS_URL ")) from None
        return value

    @property
    def redis_target(self) -> RedisTarget:
        """Where Redis is: one server or a cluster (REDIS_URL and REDIS_CLUSTER, checked at load)."""
        return parse_redis_url(self.REDIS_URL.get_secret_value(), cluster=self.REDIS_CLUSTER)

    @field_validator(*REQUIRED_NAMES)
    @classmethod
    def _required_not_placeholder(cls, value: str) -> str:
        return _not_placeholder(value)

    @field_validator(*BASE_URL_NAMES)
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        value = _checked_base_url(value)
        if info.field_name == "SLACK_API_BASE_URL":
            # slack_sdk joins base_url and method name by plain concatenation.
            return value if value.endswith("/") else value + "/"
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
