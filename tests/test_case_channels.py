"""A pool of case channels ([slack] case_channels): what the policy file accepts, how the start
checks it against SLACK_CHANNEL_ID, and which channel a case opens in. Pure functions, and the
processes' start (which stops before it reaches Redis)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bridge.config.policy_file import (
    MAX_CASE_CHANNELS,
    PolicyError,
    case_channels_for,
    describe_policy,
    load_policy,
    parse_policy,
)
from bridge.core.ids import CaseNumber, SlackUserId
from bridge.fakes.harness import ALWAYS_OPEN, write_policy
from tests.start_up import process_commands, start, start_env

ROOT = Path(__file__).resolve().parent.parent


def shipped() -> dict[str, Any]:
    return tomllib.loads((ROOT / "config" / "bridge.toml").read_text(encoding="utf-8"))


def with_channels(value: Any) -> dict[str, Any]:
    document = shipped()
    document["slack"] = {"case_channels": value}
    return document


def test_the_shipped_policy_has_no_pool() -> None:
    policy = load_policy(ROOT / "config" / "bridge.toml")
    assert policy.case_channels == ()
    assert case_channels_for(policy, "C0CASES") == ("C0CASES",)


def test_a_pool_is_kept_in_order_and_must_start_with_slack_channel_id() -> None:
    policy = parse_policy(with_channels(["C0CASES", "C0CASES2", "G0OLDPRIVATE"]))
    assert policy.case_channels == ("C0CASES", "C0CASES2", "G0OLDPRIVATE")
    assert case_channels_for(policy, "C0CASES") == ("C0CASES", "C0CASES2", "G0OLDPRIVATE")
    with pytest.raises(PolicyError, match=r"slack.case_channels: must list SLACK_CHANNEL_ID \('C0CASES2'\) first"):
        case_channels_for(policy, "C0CASES2")  # in the pool, but not first
    with pytest.raises(PolicyError, match=r"SLACK_CHANNEL_ID \('C0ELSEWHERE'\) first, not 'C0CASES'"):
        case_channels_for(policy, "C0ELSEWHERE")  # not in it at all


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["C0CASES", "c0lower"], r"slack.case_channels: entry 2, 'c0lower', is not a Slack channel ID"),
        (["U0PERSON"], r"entry 1, 'U0PERSON', is not a Slack channel ID"),
        (["C0CASES", " C0CASES2"], r"entry 2, ' C0CASES2', is not"),
        (["C0CASES", "C0CASES2\n"], r"entry 2, 'C0CASES2\\n', is not"),
        (["C0"], r"entry 1, 'C0', is not"),
        (["C" + "A" * 40], r"entry 1, 'CAAAAAAAAAAAAAAAAAAAAAAA'…, is not"),
        (["C0CASES", "C0CASES2", "C0CASES"], r"entry 3, 'C0CASES', is listed twice"),
        (["C0CASES", 12], r"slack.case_channels.1: Input should be a valid string"),
        ("C0CASES", r"slack.case_channels: Input should be a valid tuple"),
        ([f"C0CASES{i}" for i in range(MAX_CASE_CHANNELS + 1)], r"slack.case_channels: .*at most 50 items"),
    ],
    ids=[
        "lower-case",
        "a-user",
        "space",
        "newline",
        "too-short",
        "too-long",
        "twice",
        "number",
        "not-a-list",
        "too-many",
    ],
)
def test_a_bad_pool_is_refused_naming_the_entry(value: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(with_channels(value))


def test_a_hostile_entry_is_shown_escaped_and_cut_short() -> None:
    hostile = "\x1b[2J" + "\u202e" + "x" * 10_000
    with pytest.raises(PolicyError) as refused:
        parse_policy(with_channels(["C0CASES", hostile]))
    line = str(refused.value)
    assert "\x1b" not in line and "\u202e" not in line and len(line) < 200


def test_the_slack_section_takes_no_other_setting() -> None:
    document = shipped()
    document["slack"] = {"case_channels": [], "channel": "C0CASES"}
    with pytest.raises(PolicyError, match=r"slack\.channel: is not a known setting"):
        parse_policy(document)


def test_every_process_stops_at_start_on_a_pool_that_does_not_start_with_slack_channel_id(tmp_path: Path) -> None:
    """bridge serve, bridge worker and the Procfile's web process print the same one line and exit
    with 2, before they reach Redis."""
    policy = write_policy(tmp_path, hours=ALWAYS_OPEN, settings={"slack": {"case_channels": ["C0OTHER", "C0CASES"]}})
    env = start_env({"BRIDGE_CONFIG": str(policy)})
    for process, command in process_commands().items():
        result = start(command, env)
        lines = [line for line in result.stderr.splitlines() if line.startswith("bridge:")]
        assert result.returncode == 2, f"{process}: {result.stderr}"
        assert lines == ["bridge: slack.case_channels: must list SLACK_CHANNEL_ID ('C0CASES') first, not 'C0OTHER'"]


def test_check_config_says_where_cases_open() -> None:
    def show(text: Any) -> str:
        return "".join(part for part in text if isinstance(part, str))

    alone = describe_policy(load_policy(ROOT / "config" / "bridge.toml"), show=show)
    assert "case channels: SLACK_CHANNEL_ID alone" in alone
    pooled = describe_policy(parse_policy(with_channels(["C0CASES", "C0CASES2"])), show=show)
    assert "case channels: 2 channels in turn: C0CASES, C0CASES2 (the first must be SLACK_CHANNEL_ID)" in pooled


def test_a_case_opens_in_the_pools_channels_in_turn() -> None:
    from bridge.core.channels import channel_for_new_case

    policy = parse_policy(with_channels(["C0CASES", "C0CASES2", "C0CASES3"]))
    numbers = [CaseNumber(n) for n in range(1, 8)]
    assert [channel_for_new_case(n, policy) for n in numbers] == [
        "C0CASES",
        "C0CASES2",
        "C0CASES3",
        "C0CASES",
        "C0CASES2",
        "C0CASES3",
        "C0CASES",
    ]
    for alone in ([], ["C0CASES"]):  # no pool, or a pool of one: no channel, as before pools
        assert channel_for_new_case(CaseNumber(2), parse_policy(with_channels(alone))) is None


def test_joins_and_leaves_change_the_members_of_their_pool_channel() -> None:
    from bridge import core
    from bridge.core.events import MemberChanged
    from bridge.core.rules.controls import on_member_changed

    pool = ("C0CASES", "C0CASES2")
    user = SlackUserId("UC")
    joined = on_member_changed(MemberChanged("C0CASES2", user, joined=True), channel="C0CASES", pool=pool)
    assert joined.effects == (core.ChangeMember(user, True, channel="C0CASES2"),)
    left = on_member_changed(MemberChanged("C0CASES", user, joined=False), channel="C0CASES", pool=pool)
    assert left.effects == (core.ChangeMember(user, False),)
    assert on_member_changed(MemberChanged("C0OTHER", user, joined=True), channel="C0CASES", pool=pool) == core.NOTHING
