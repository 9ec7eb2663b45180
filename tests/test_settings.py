"""Settings from the environment: secrets that never show, refused at start with the variable named."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bridge.config.settings import (
    BASE_URL_NAMES,
    REQUIRED_NAMES,
    SECRET_NAMES,
    SettingsError,
    load_settings,
    pseudonym_key_bytes,
)
from tests.start_up import GOOD, process_commands, start, start_env

SECRETS = {name: GOOD[name] for name in (*SECRET_NAMES, "REDIS_URL")}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*GOOD, "LINE_API_BASE_URL", "LINE_DATA_API_BASE_URL", "SLACK_API_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)


def test_the_secret_names_are_the_credentials() -> None:
    assert set(SECRET_NAMES) == {
        "LINE_CHANNEL_SECRET",
        "LINE_CHANNEL_ACCESS_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "BRIDGE_PSEUDONYM_KEY",
    }


def test_every_secret_is_a_secret_str_and_its_value_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GOOD.items():
        # Read from the environment; spaces around a credential (a copy and paste) are dropped.
        monkeypatch.setenv(name, f"  {value} " if name in SECRET_NAMES else value)
    settings = load_settings()
    for name, value in SECRETS.items():
        secret = getattr(settings, name)
        assert isinstance(secret, SecretStr), name
        assert secret.get_secret_value() == value, name
    assert settings.SLACK_CHANNEL_ID == "C0CASES"  # not a secret: a plain string


def test_no_secret_shows_in_repr_str_or_a_dump() -> None:
    settings = load_settings(**GOOD)
    shown = [
        repr(settings),
        str(settings),
        f"{settings}",
        settings.model_dump_json(),
        str(settings.model_dump()),
        *(repr(getattr(settings, name)) for name in SECRETS),
        *(str(getattr(settings, name)) for name in SECRETS),
    ]
    for text in shown:
        for name, value in SECRETS.items():
            assert value not in text, f"{name} shown in {text[:60]!r}"
    assert "**********" in repr(settings)
    # The part of a secret that gives it away most often, the Redis password, is not shown either.
    assert "redis-password-value" not in repr(settings)


@pytest.mark.parametrize("name", [*SECRET_NAMES, *REQUIRED_NAMES])
@pytest.mark.parametrize("placeholder", ["", "  ", "changeme", "xxxx", "your-token", "<secret>", "TODO"])
def test_a_placeholder_is_refused_by_name(name: str, placeholder: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(**{**GOOD, name: placeholder})
    assert f"{name} is missing or still a placeholder" in str(error.value)
    for value in SECRETS.values():
        assert value not in str(error.value)


def test_a_secret_passed_as_secret_str_is_checked_too() -> None:
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is missing or still a placeholder"):
        load_settings(**{**GOOD, "SLACK_BOT_TOKEN": SecretStr("changeme")})
    settings = load_settings(**{**GOOD, "SLACK_BOT_TOKEN": SecretStr(" xoxb-9 ")})
    assert settings.SLACK_BOT_TOKEN.get_secret_value() == "xoxb-9"


# --- the pseudonym key -----------------------------------------------------------------------

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "written",
    [
        KEY.hex(),
        KEY.hex().upper(),
        base64.b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode(),
        f"  {KEY.hex()}\n",  # a copy and paste
    ],
)
def test_the_pseudonym_key_is_read_as_hex_or_base64(written: str) -> None:
    settings = load_settings(**{**GOOD, "BRIDGE_PSEUDONYM_KEY": written})
    assert pseudonym_key_bytes(settings.BRIDGE_PSEUDONYM_KEY.get_secret_value()) == KEY


def test_a_longer_pseudonym_key_is_kept_whole() -> None:
    # A key moved from Redis (bridge pseudonym-key migrate) is 64 bytes: no byte may be dropped.
    assert pseudonym_key_bytes((b"0123456789abcdef" * 4).hex()) == b"0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("ab" * 31, "is 31 bytes; at least 32 random bytes are needed"),
        (base64.b64encode(bytes(31)).decode(), "is 31 bytes; at least 32 random bytes are needed"),
        ("a-passphrase-somebody-could-guess-in-a-minute!", "is neither hex nor base64"),
        (KEY.hex() + "c", "is neither hex nor base64"),  # a digit too many
        (KEY.hex()[:32] + " " + KEY.hex()[32:], "is neither hex nor base64"),
        (base64.b64encode(KEY).decode().rstrip("="), "is neither hex nor base64"),  # cut short
    ],
)
def test_a_pseudonym_key_too_short_or_unreadable_is_refused_by_name(written: str, reason: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(**{**GOOD, "BRIDGE_PSEUDONYM_KEY": written})
    message = str(error.value)
    assert f"BRIDGE_PSEUDONYM_KEY {reason}" in message
    assert "bridge pseudonym-key new" in message
    assert written not in message
    for value in SECRETS.values():
        assert value not in message


def test_the_pseudonym_key_is_required() -> None:
    with pytest.raises(SettingsError, match="BRIDGE_PSEUDONYM_KEY is not set"):
        load_settings(**{name: value for name, value in GOOD.items() if name != "BRIDGE_PSEUDONYM_KEY"})


# --- API base URLs ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", BASE_URL_NAMES)
@pytest.mark.parametrize(
    "url",
    [
        "https://api.line.me",
        "https://api-data.line.me/",
        "HTTPS://slack.com/api/",
        "https://gateway.example.org:8443/slack/api",
        "http://127.0.0.1:54321",
        "http://localhost:8080/",
        "http://LOCALHOST",
        "http://[::1]:9000",
    ],
)
def test_https_and_loopback_http_base_urls_are_accepted(name: str, url: str) -> None:
    value = getattr(load_settings(**{**GOOD, name: url}), name)
    assert value.rstrip("/") == url.rstrip("/")


@pytest.mark.parametrize("name", BASE_URL_NAMES)
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.line.me", "must be https"),
        ("http://slack.com/api/", "must be https"),
        ("http://10.0.0.5:8080", "must be https"),
        ("http://127.0.0.1.nip.example:8080", "must be https"),  # loopback only by name, not by prefix
        ("http://localhost.evil.example", "must be https"),
        ("http://localhost@evil.example", "must not carry a user name or password"),
        ("https://user:hunter2-password@api.line.me", "must not carry a user name or password"),
        ("ftp://api.line.me", "is not an https URL with a host"),
        ("file:///etc/passwd", "is not an https URL with a host"),
        ("api.line.me", "is not an https URL with a host"),
        ("https://", "is not an https URL with a host"),
        ("", "is not an https URL with a host"),
        ("https://api.line.me:port", "is not a valid URL"),
        ("https://[::1", "is not a valid URL"),
    ],
)
def test_a_base_url_that_is_not_https_is_refused_by_name(name: str, url: str, reason: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(**{**GOOD, name: url})
    message = str(error.value)
    assert f"{name} {reason}" in message
    assert "hunter2-password" not in message  # the URL is not repeated
    for value in SECRETS.values():
        assert value not in message


def test_the_default_base_urls_are_the_platforms_own() -> None:
    settings = load_settings(**GOOD)
    assert settings.LINE_API_BASE_URL == "https://api.line.me"
    assert settings.LINE_DATA_API_BASE_URL == "https://api-data.line.me"
    assert settings.SLACK_API_BASE_URL == "https://slack.com/api/"


@pytest.mark.parametrize("process", ["worker", "web"])
def test_a_process_with_a_plain_http_api_url_does_not_start(process: str) -> None:
    env = start_env({"SLACK_API_BASE_URL": "http://slack.example.org/api/"})
    if process == "worker":
        result = start([sys.executable, "-m", "bridge.cli", "worker"], env)
        assert result.returncode == 2
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", "bridge.app:create_app_from_env", "--port", "0"]
        result = start(command, env)
        assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "SLACK_API_BASE_URL must be https" in output
    for value in SECRETS.values():
        assert value not in output


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        ({"SLACK_SIGNING_SECRET": None}, "bridge: configuration error: SLACK_SIGNING_SECRET is not set"),
        ({"LINE_CHANNEL_SECRET": "changeme"}, "LINE_CHANNEL_SECRET is missing or still a placeholder"),
        ({"BRIDGE_WORKER_CONCURRENCY": "many"}, "BRIDGE_WORKER_CONCURRENCY Input should be a valid integer"),
        ({"BRIDGE_CONFIG": "/nonexistent/bridge.toml"}, "bridge: /nonexistent/bridge.toml: no such policy file"),
        ({"REDIS_URL": "redis+cluster://127.0.0.1:1,127.0.0.1:x"}, "REDIS_URL has a cluster node that is not host"),
    ],
    ids=["missing", "placeholder", "invalid", "no policy file", "bad redis url"],
)
def test_every_process_stops_on_a_bad_setting_with_the_same_clear_line(bad: dict[str, str | None], line: str) -> None:
    """bridge serve, bridge worker and the Procfile's web process (uvicorn's factory) print one
    line naming the variable, no traceback and no secret, and exit with 2."""
    env = start_env(bad)
    said = {}
    for process, command in process_commands().items():
        result = start(command, env)
        output = result.stdout + result.stderr
        assert result.returncode == 2, f"{process}: {result.returncode}\n{output}"
        assert "Traceback" not in output, f"{process}:\n{output}"
        for value in SECRETS.values():
            assert value not in output
        said[process] = [text for text in result.stderr.splitlines() if text.startswith("bridge:")]
    assert said["serve"] == said["worker"] == said["web"], said
    assert len(said["web"]) == 1 and line in said["web"][0]
