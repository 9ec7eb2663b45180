"""Which Slack app and workspace this deployment is, learned from Slack at start, and whether a
request names them.

A signed request proves only that it was signed with the signing secret. The web process also
refuses one that names another app (``api_app_id``) or another workspace (``team_id`` or
``team.id``; in an Enterprise Grid organisation also the organisation), so the app installed in a
second workspace, or a signing secret paired with another app's bot token, records nothing. No
setting names them: the bot token says who it is (``auth.test``: team, bot user, bot) and whose
app its bot is (``bots.info``: app). Until both have answered, every Slack request is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("bridge.slack")

# Slack's IDs (A…, T…, E…, U…, B…): letters and digits. A value of any other form is never
# compared, and never written into a log line as it came.
_SLACK_ID = re.compile(r"[A-Za-z0-9]{1,40}")

# Interaction payloads that Slack sends without api_app_id (the message shortcut and global
# shortcuts); for them the workspace alone is checked, and an api_app_id, if one is there.
_NO_APP_ID = frozenset({"message_action", "shortcut"})


@dataclass(frozen=True)
class SlackIdentity:
    """This deployment's Slack app and workspace, as Slack described the bot token."""

    app_id: str
    team_id: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None  # only in an Enterprise Grid organisation
    org_wide: bool = False  # installed for the whole organisation: any of its workspaces is ours

    def describe(self) -> str:
        where = f"team={self.team_id}" + (f" enterprise={self.enterprise_id}" if self.enterprise_id else "")
        return f"app={self.app_id} {where}" + (" (organisation-wide install)" if self.org_wide else "")


class IdentityUnavailable(Exception):
    """Slack did not say who the bot token is; the message is fit for a log line (an error code
    or an exception's type, never a token or a response body)."""


async def learn_identity(client: AsyncWebClient) -> SlackIdentity:
    """Ask Slack who the client's bot token is: auth.test, then bots.info for its bot.
    Raises IdentityUnavailable."""
    auth = await _call("auth.test", client.auth_test())
    bot_id = _id_in(auth, "bot_id", "auth.test gave no bot_id (is SLACK_BOT_TOKEN a bot token, xoxb-?)")
    team_id = _id_in(auth, "team_id", "auth.test gave no team_id")
    bot_user_id = _id_in(auth, "user_id", "auth.test gave no user_id")
    enterprise = auth.get("enterprise_id")
    bot = (await _call("bots.info", client.bots_info(bot=bot_id))).get("bot")
    return SlackIdentity(
        app_id=_id_in(bot, "app_id", "bots.info gave no app_id for the bot"),
        team_id=team_id,
        bot_user_id=bot_user_id,
        bot_id=bot_id,
        enterprise_id=enterprise if isinstance(enterprise, str) and _SLACK_ID.fullmatch(enterprise) else None,
        org_wide=auth.get("is_enterprise_install") is True,
    )


async def _call(method: str, call: Any) -> dict[str, Any]:
    try:
        response = await call
    except SlackApiError as exc:
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        raise IdentityUnavailable(f"{method} failed: {_shown(error)}") from None
    except Exception as exc:  # unreachable, timed out, not JSON: say which, never the details
        raise IdentityUnavailable(f"{method} failed: {type(exc).__name__}") from None
    data = response.data
    if not isinstance(data, dict):
        raise IdentityUnavailable(f"{method} answered no JSON object")
    return data


def _id_in(container: Any, name: str, missing: str) -> str:
    value = container.get(name) if isinstance(container, dict) else None
    if not isinstance(value, str) or not _SLACK_ID.fullmatch(value):
        raise IdentityUnavailable(missing)
    return value


class IdentityLearner:
    """Holds the identity once learned. learn() tries once; keep_learning() retries with a
    backoff doubling from first_delay to max_delay until Slack answers, logging each failure."""

    def __init__(self, client: AsyncWebClient, *, first_delay: float = 1.0, max_delay: float = 60.0) -> None:
        self._client = client
        self._first_delay = first_delay
        self._max_delay = max_delay
        self.identity: SlackIdentity | None = None

    async def learn(self) -> bool:
        try:
            self.identity = await learn_identity(self._client)
        except IdentityUnavailable as exc:
            log.error("slack identity not learned (%s); Slack requests are refused with 503 until it is", exc)
            return False
        log.info("slack identity learned %s", self.identity.describe())
        return True

    async def keep_learning(self) -> None:
        delay = self._first_delay
        while self.identity is None:
            await asyncio.sleep(delay)
            if await self.learn():
                return
            delay = min(delay * 2, self._max_delay)


def is_handshake(payload: dict[str, Any]) -> bool:
    """Slack's checks of the request URL (url_verification when the URL is saved, ssl_check for
    slash commands): they name no app or workspace, record nothing and are answered by Bolt.
    Exactly Bolt's own tests of them, so nothing that Bolt would pass to a listener passes here."""
    return payload.get("type") == "url_verification" or payload.get("ssl_check") == "1"


def mismatch(payload: dict[str, Any], ours: SlackIdentity) -> str | None:
    """None if the payload names this app and this workspace (or, for an organisation-wide
    install, this organisation); otherwise why not, fit for a log line. Every field the payload
    has that names one must name ours, and it must name at least a workspace (an organisation)."""
    app = payload.get("api_app_id")
    app_required = app is not None or payload.get("type") not in _NO_APP_ID
    if app_required and app != ours.app_id:
        return f"api_app_id {_shown(app)} is not this app's ({ours.app_id})"
    teams = _named(payload.get("team_id"), _dig(payload, "team", "id"), _as_id(payload.get("team")))
    enterprises = _named(
        payload.get("enterprise_id"),
        _dig(payload, "enterprise", "id"),
        _as_id(payload.get("enterprise")),
        _dig(payload, "team", "enterprise_id"),
    )
    if ours.org_wide:
        if not enterprises:
            return "names no organisation"
    elif not teams:
        return "names no workspace (team_id or team.id)"
    for team in [] if ours.org_wide else teams:
        if team != ours.team_id:
            return f"team {_shown(team)} is not this workspace ({ours.team_id})"
    for enterprise in enterprises:
        if enterprise != ours.enterprise_id:
            return f"enterprise {_shown(enterprise)} is not this organisation ({ours.enterprise_id or 'none'})"
    return None


def _named(*values: Any) -> list[Any]:
    return [value for value in values if value is not None]


def _as_id(value: Any) -> Any:
    """A field that Slack writes as an object with an id may also come as the bare id."""
    return None if isinstance(value, dict) else value


def _dig(payload: dict[str, Any], name: str, key: str) -> Any:
    value = payload.get(name)
    return value.get(key) if isinstance(value, dict) else None


def _shown(value: Any) -> str:
    """A value from a request or an answer, fit for a log line: a Slack ID or error code as it
    is, none when missing, and ? for anything else."""
    if value is None:
        return "none"
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_]{1,40}", value) else "?"
