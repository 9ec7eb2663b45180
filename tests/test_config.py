"""Settings from the environment, the policy file, check-config and the Slack manifest."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from bridge.config.policy_file import PolicyError, describe_policy, load_policy, parse_policy
from bridge.config.settings import SettingsError, load_settings
from tests.slack_text import slack

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "LINE_CHANNEL_SECRET": "0123456789abcdef",
    "LINE_CHANNEL_ACCESS_TOKEN": "line-token-value",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "abcdef0123456789",
    "BRIDGE_PSEUDONYM_KEY": "0123456789abcdef" * 4,
    "SLACK_CHANNEL_ID": "C0CASES",
    "SLACK_SUPERVISOR_CHANNEL_ID": "C0SUPER",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*GOOD, "REDIS_URL", "SLACK_API_BASE_URL", "BRIDGE_BODY_TIMEOUT_SECONDS"]:
        monkeypatch.delenv(name, raising=False)


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.REDIS_URL.get_secret_value() == "redis://localhost:6379/0"
    assert settings.LINE_API_BASE_URL == "https://api.line.me"
    assert settings.LINE_DATA_API_BASE_URL == "https://api-data.line.me"
    assert settings.SLACK_API_BASE_URL == "https://slack.com/api/"
    assert str(settings.BRIDGE_CONFIG) == "config/bridge.toml"
    assert settings.BRIDGE_BODY_TIMEOUT_SECONDS == 5.0


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_body_timeout_out_of_range_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="BRIDGE_BODY_TIMEOUT_SECONDS"):
        load_settings(**{**GOOD, "BRIDGE_BODY_TIMEOUT_SECONDS": value})


@pytest.mark.parametrize("placeholder", ["", "changeme", "xxxx", "your-channel-secret", "<secret>", "TODO"])
def test_placeholder_secret_is_refused_by_name_without_echoing_it(placeholder: str) -> None:
    with pytest.raises(SettingsError, match="LINE_CHANNEL_SECRET") as error:
        load_settings(**{**GOOD, "LINE_CHANNEL_SECRET": placeholder})
    assert "0123456789abcdef" not in str(error.value)


def test_missing_variables_are_all_named() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(**{k: v for k, v in GOOD.items() if k not in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL_ID")})
    assert "SLACK_BOT_TOKEN is not set" in str(error.value)
    assert "SLACK_CHANNEL_ID is not set" in str(error.value)


def test_worker_refuses_to_start_without_secrets() -> None:
    env = {"PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bridge"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LINE_CHANNEL_SECRET is not set" in result.stderr


def test_the_shipped_policy_follows_the_published_facts() -> None:
    policy = load_policy(ROOT / "config" / "bridge.toml")
    assert policy.timezone.key == "Asia/Tokyo"
    assert policy.hotline == "0120-967-866"
    assert policy.note_prefix == "//"
    welcome = policy.render("welcome")
    for fact in ("0120-967-866", "秘密", "名前を言わなくても", "既読", "1時間", "10分", "SNS"):
        assert fact in welcome


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["texts"].update(welcome="こんにちは {name}"), "texts.welcome: uses unknown placeholder {name}"),
        (lambda d: d["texts"].update(case_root="#{case"), "texts.case_root: is not a valid template"),
        (lambda d: d["texts"].update(case_root="#{case:s}"), "texts.case_root: cannot be rendered"),
        (lambda d: d["texts"].update(case_root="#{case.real}"), "texts.case_root: uses unknown placeholder"),
        (lambda d: d["texts"].update(case_root="#{}"), "texts.case_root: uses unknown placeholder"),
        (lambda d: d["service"].update(timezone="Mars/Base"), "service.timezone: unknown timezone"),
        (lambda d: d["service"].update(colour="blue"), "service.colour: is not a known setting"),
        (lambda d: d["texts"].pop("edit_note"), "texts.edit_note: is required"),
        (lambda d: d["service"].update(note_prefix=""), "service.note_prefix"),
        (
            lambda d: d["timeouts"].update(idle_warning_seconds=600, idle_close_seconds=600),
            "timeouts: idle_warning_seconds must be less than idle_close_seconds",
        ),
    ],
    ids=[
        "unknown-placeholder",
        "broken-template",
        "bad-format-spec",
        "attribute-access",
        "positional",
        "timezone",
        "unknown-key",
        "missing-text",
        "empty-prefix",
        "check-in-after-close",
    ],
)
def test_a_bad_policy_names_the_key(mutate: object, message: str) -> None:
    import tomllib

    document = tomllib.loads((ROOT / "config" / "bridge.toml").read_text())
    mutate(document)  # type: ignore[operator]
    with pytest.raises(PolicyError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_policy(document)


def run_bridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "bridge"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_renders_every_text(tmp_path: Path) -> None:
    result = run_bridge("check-config", "config/bridge.toml")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    for name in (
        "welcome",
        "case_root",
        "unfollow_note",
        "edit_note",
        "delete_note",
        "closed_case_ephemeral",
        "delivery_failed_note",
    ):
        assert f"--- {name}" in result.stdout
    texts = result.stdout.split("texts (rendered")[1]
    assert "{" not in texts  # every placeholder was filled
    # Mentions and links in the samples are shown as Slack shows them.
    assert "<@U012ABCDEF>" in texts and "<!subteam^S012ABC> " in texts and "<!here>" in texts
    assert "https://slack.com/archives/C0123456789/p1700000000000100" in texts
    assert not any(f"{name}(" in texts for name in ("UserMention", "GroupMention", "OnDuty", "ThreadLink"))

    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "config" / "bridge.toml").read_text().replace("{hotline}", "{hotlines}"))
    result = run_bridge("check-config", str(bad))
    assert result.returncode == 2
    assert "texts.welcome: uses unknown placeholder {hotlines}" in result.stderr

    result = run_bridge("check-config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "no such policy file" in result.stderr


def test_slack_manifest_asks_for_what_the_bridge_uses() -> None:
    manifest = yaml.safe_load((ROOT / "config" / "slack-app-manifest.yaml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "reactions:write", "groups:history", "metadata.message:read"} <= scopes
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert "message.groups" in events["bot_events"]  # the case channel is private
    from bridge.adapters.slack.names import COMMANDS, SHORTCUT

    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert "commands" in scopes and sorted(commands) == sorted(COMMANDS)  # every command the bridge serves
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [SHORTCUT]
    assert {"groups:read", "channels:read", "usergroups:read"} <= scopes  # the roster for the controls
    assert "users:read" in scopes  # bots.info: which app the bot belongs to
    assert {"member_joined_channel", "member_left_channel"} <= set(events["bot_events"])
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")


@pytest.mark.parametrize(
    ("section", "setting", "value", "message"),
    [
        ("roles", "supervisors", '["alice"]', "roles.supervisors: 'alice' is not a Slack user ID"),
        ("roles", "supervisor_group", '"G1"', "roles.supervisor_group"),
        ("safety", "calm_expressions", '["(死"]', "'(死' cannot be matched in linear time or is not a valid"),
        ("safety", "calm_expressions", '["x*"]', "matches an empty message"),
        # What only a backtracking engine can run is refused, naming the expression.
        ("safety", "calm_expressions", r'["(し)\\1"]', "cannot be matched in linear time"),
        ("safety", "calm_expressions", '["(?=し)し"]', "cannot be matched in linear time"),
        ("floods", "window_seconds", "0", "floods.window_seconds"),
        ("audit", "retention_days", "0", "audit.retention_days"),
        # Set aside today, dropped at the next sweep: an operator must get time to look.
        ("retention", "set_aside_days", "0", "retention.set_aside_days"),
        ("retention", "case_record_days", "0", "retention.case_record_days"),
        ("retention", "block_review_days", "-1", "retention.block_review_days"),
    ],
)
def test_safety_and_role_settings_are_checked(
    tmp_path: Path, section: str, setting: str, value: str, message: str
) -> None:
    text = (ROOT / "config" / "bridge.toml").read_text(encoding="utf-8")
    start = text.index(f"\n{setting} = ", text.index(f"\n[{section}]\n")) + 1
    line_end = text.index("\n", start)
    end = text.index("\n]", start) + 2 if text[line_end - 1] == "[" else line_end  # a list over several lines
    path = tmp_path / "bad.toml"
    path.write_text(text[:start] + f"{setting} = {value}" + text[end:], encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in str(caught.value)


def test_check_config_shows_the_files_own_values_and_limits_that_are_off() -> None:
    document = tomllib.loads((ROOT / "config" / "bridge.toml").read_text(encoding="utf-8"))
    document["service"]["hotline"] = "0120-000-111"
    document["service"]["name"] = "テスト市こどもLINE相談"
    document["floods"]["max_stickers"] = 0
    described = describe_policy(parse_policy(document), show=slack)
    texts = described.split("texts (rendered")[1]
    assert "0120-000-111" in texts and "0120-967-866" not in texts  # the file's hotline, not the shipped one
    assert "テスト市こどもLINE相談" in texts
    assert "more than 0" not in described
    assert "floods:       more than 20 messages from one child in 60 s are deferred for 300 s" in described

    document["floods"]["max_messages"] = 0
    assert "floods:       off" in describe_policy(parse_policy(document), show=slack)
    assert "its record after 365" in described and "supervisors after 90 days" in described
    document["retention"]["block_review_days"] = 0
    assert "block review: off" in describe_policy(parse_policy(document), show=slack)
