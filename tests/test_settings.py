"""Settings from the environment: secrets that never show, refused at start with the variable named."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bridge.config.settings import REQUIRED_NAMES, SECRET_NAMES, SettingsError, load_settings

GOOD = {
    "LINE_CHANNEL_SECRET": "0123456789abcdef-line-secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "line-access-token-value",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3-bot-token",
    "SLACK_SIGNING_SECRET": "abcdef0123456789-signing",
    "SLACK_CHANNEL_ID": "C0CASES",
    "SLACK_SUPERVISOR_CHANNEL_ID": "C0SUPER",
    "REDIS_URL": "redis://:redis-password-value@redis.internal:6379/0",
}
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
