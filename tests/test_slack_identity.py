"""Which app and workspace a Slack request names, against the identity learned from Slack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bridge.adapters.slack.identity import (
    IdentityLearner,
    IdentityUnavailable,
    SlackIdentity,
    is_handshake,
    learn_identity,
    mismatch,
)
from bridge.fakes.slack import FakeSlack

OURS = SlackIdentity(app_id="A0001", team_id="T0001", bot_user_id="UBOT", bot_id="BBOT")
IN_GRID = SlackIdentity(app_id="A0001", team_id="T0001", bot_user_id="UBOT", bot_id="BBOT", enterprise_id="E0001")
ORG_WIDE = SlackIdentity(
    app_id="A0001", team_id="E0001", bot_user_id="UBOT", bot_id="BBOT", enterprise_id="E0001", org_wide=True
)

EVENT = {"type": "event_callback", "api_app_id": "A0001", "team_id": "T0001", "event": {"type": "message"}}
COMMAND = {"command": "/cases", "api_app_id": "A0001", "team_id": "T0001", "user_id": "U1"}
BUTTON = {"type": "block_actions", "api_app_id": "A0001", "team": {"id": "T0001", "domain": "x"}, "actions": []}
SHORTCUT = {"type": "message_action", "callback_id": "case_actions", "team": {"id": "T0001"}, "message": {}}


@pytest.mark.parametrize("payload", [EVENT, COMMAND, BUTTON, SHORTCUT], ids=["event", "command", "button", "shortcut"])
def test_a_request_naming_this_app_and_workspace_is_taken(payload: dict[str, Any]) -> None:
    assert mismatch(payload, OURS) is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**EVENT, "api_app_id": "A9999"}, "api_app_id A9999 is not this app's (A0001)"),
        ({**EVENT, "team_id": "T9999"}, "team T9999 is not this workspace (T0001)"),
        ({**COMMAND, "api_app_id": "A9999"}, "api_app_id A9999 is not this app's"),
        ({**COMMAND, "team_id": "T9999"}, "team T9999 is not this workspace"),
        ({**BUTTON, "team": {"id": "T9999"}}, "team T9999 is not this workspace"),
        ({**BUTTON, "api_app_id": "A9999"}, "api_app_id A9999"),
        ({**SHORTCUT, "team": {"id": "T9999"}}, "team T9999"),
        ({**SHORTCUT, "api_app_id": "A9999"}, "api_app_id A9999"),  # Slack sends none, but if one is there
        ({k: v for k, v in EVENT.items() if k != "api_app_id"}, "api_app_id none is not this app's"),
        ({k: v for k, v in COMMAND.items() if k != "team_id"}, "names no workspace"),
        ({k: v for k, v in SHORTCUT.items() if k != "team"}, "names no workspace"),
        ({**SHORTCUT, "team": None}, "names no workspace"),
        ({**EVENT, "team": {"id": "T9999"}}, "team T9999"),  # every field naming a workspace must be ours
        ({**BUTTON, "team_id": "T9999"}, "team T9999"),
        ({**BUTTON, "team": "T9999"}, "team T9999"),
        ({**EVENT, "team_id": 1}, "team ? is not"),
        ({**EVENT, "team_id": ""}, "team ? is not"),
        ({**EVENT, "api_app_id": ["A0001"]}, "api_app_id ? is not"),
        ({**EVENT, "enterprise_id": "E0001"}, "enterprise E0001 is not this organisation (none)"),
    ],
)
def test_a_request_naming_another_app_or_workspace_is_refused_and_says_which(
    payload: dict[str, Any], reason: str
) -> None:
    said = mismatch(payload, OURS)
    assert said is not None and reason in said


def test_what_a_refusal_says_is_a_slack_id_or_a_question_mark() -> None:
    said = mismatch({**EVENT, "api_app_id": "A1\nforged log line"}, OURS)
    assert said == "api_app_id ? is not this app's (A0001)"
    said = mismatch({**EVENT, "team_id": "T1 <script>" * 10}, OURS)
    assert said == "team ? is not this workspace (T0001)"


@pytest.mark.parametrize(
    ("payload", "taken"),
    [
        ({**EVENT, "enterprise_id": "E0001"}, True),
        ({**EVENT, "enterprise_id": None}, True),
        ({**EVENT}, True),
        ({**EVENT, "enterprise_id": "E9999"}, False),
        (
            {**BUTTON, "enterprise": {"id": "E0001", "name": "Org"}, "team": {"id": "T0001", "enterprise_id": "E0001"}},
            True,
        ),
        ({**BUTTON, "enterprise": {"id": "E9999"}}, False),
        ({**SHORTCUT, "team": {"id": "T0001", "enterprise_id": "E9999"}}, False),
        ({**EVENT, "team_id": "T9999", "enterprise_id": "E0001"}, False),  # another workspace of the organisation
    ],
)
def test_in_an_enterprise_grid_organisation_the_organisation_must_be_ours_too(
    payload: dict[str, Any], taken: bool
) -> None:
    assert (mismatch(payload, IN_GRID) is None) is taken


@pytest.mark.parametrize(
    ("payload", "taken"),
    [
        ({**EVENT, "team_id": "T0002", "enterprise_id": "E0001"}, True),  # any workspace of the organisation
        ({**BUTTON, "team": {"id": "T0003", "enterprise_id": "E0001"}}, True),
        ({**EVENT, "team_id": "T0002", "enterprise_id": "E9999"}, False),
        ({**EVENT, "team_id": "T0002"}, False),  # names no organisation
        ({**EVENT, "api_app_id": "A9999", "enterprise_id": "E0001"}, False),
    ],
)
def test_an_organisation_wide_install_is_bound_to_the_organisation(payload: dict[str, Any], taken: bool) -> None:
    assert (mismatch(payload, ORG_WIDE) is None) is taken


def test_slacks_checks_of_the_request_url_name_no_app_and_are_handshakes() -> None:
    assert is_handshake({"type": "url_verification", "challenge": "c", "token": "t"})
    assert is_handshake({"ssl_check": "1", "token": "t"})
    assert not is_handshake(EVENT) and not is_handshake(COMMAND)
    # Bolt answers ssl_check only when it is "1"; any other value goes on to the listeners.
    assert not is_handshake({**COMMAND, "team_id": "T9999", "ssl_check": "0"})


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token="xoxb-identity-test", team_id="T0042", app_id="A0042") as fake:
        yield fake


def client(slack: FakeSlack, token: str = "xoxb-identity-test") -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=slack.url + "/api/", retry_handlers=[], timeout=2)


async def test_the_identity_is_learned_from_auth_test_and_bots_info(slack: FakeSlack) -> None:
    learned = await learn_identity(client(slack))
    assert learned == SlackIdentity(app_id="A0042", team_id="T0042", bot_user_id="UBRIDGEBOT", bot_id="BBRIDGEBOT")
    bots_info = slack.requests_to("/api/bots.info")
    assert len(bots_info) == 1 and "BBRIDGEBOT" in (bots_info[0].body.decode() + str(bots_info[0].query))


async def test_in_an_enterprise_grid_organisation_the_organisation_is_learned_too() -> None:
    with FakeSlack(bot_token="xoxb-identity-test", enterprise_id="E0042") as slack:
        learned = await learn_identity(client(slack))
    assert (learned.enterprise_id, learned.org_wide) == ("E0042", False)


@pytest.mark.parametrize(
    ("fail", "reason"),
    [
        (("/api/auth.test", 200, {"ok": False, "error": "invalid_auth"}), "auth.test failed: invalid_auth"),
        (("/api/auth.test", 500, None), "auth.test failed:"),
        (("/api/bots.info", 200, {"ok": False, "error": "missing_scope", "needed": "users:read"}), "missing_scope"),
        (("/api/auth.test", 200, {"ok": True, "team_id": "T0042", "user_id": "U1"}), "no bot_id"),
        (("/api/bots.info", 200, {"ok": True, "bot": {"id": "BBRIDGEBOT"}}), "bots.info gave no app_id"),
        (("/api/auth.test", 200, {"ok": True, "bot_id": "B1", "user_id": "U1", "team_id": "T 1"}), "no team_id"),
    ],
)
async def test_when_slack_does_not_say_who_the_token_is_the_error_says_why_without_the_token(
    slack: FakeSlack, fail: tuple[str, int, Any], reason: str
) -> None:
    path, status, body = fail
    slack.fail_next(path, status, body=body)
    with pytest.raises(IdentityUnavailable) as error:
        await learn_identity(client(slack))
    assert reason in str(error.value)
    assert "xoxb-identity-test" not in str(error.value)


async def test_an_unreachable_slack_is_named_by_the_errors_type() -> None:
    with FakeSlack() as gone:
        url = gone.url
    web = AsyncWebClient(token="xoxb-identity-test", base_url=url + "/api/", retry_handlers=[], timeout=2)
    with pytest.raises(IdentityUnavailable, match=r"auth.test failed: \w+"):
        await learn_identity(web)


async def test_the_learner_keeps_asking_until_slack_answers(slack: FakeSlack) -> None:
    slack.fail_next("/api/auth.test", 503, times=3)
    learner = IdentityLearner(client(slack), first_delay=0.01, max_delay=0.02)
    assert not await learner.learn() and learner.identity is None
    await learner.keep_learning()
    assert learner.identity is not None and learner.identity.app_id == "A0042"
    assert len(slack.requests_to("/api/auth.test")) == 4
