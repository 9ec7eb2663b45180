"""The Slack Web API client: posts, updates, reactions and lookups, each outcome classified as
delivered, retry or failed."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.core.retry import DELIVERED, Outcome, OutcomeStatus

log = logging.getLogger("bridge.slack")
# The logger the SDK is given, at WARNING as configure_logging sets the "slack_sdk" loggers (their
# debug lines carry whole request bodies: a child's words). Its own level must be set: the SDK
# checks `logger.level <= DEBUG`, which an unset level (0) passes, and then formats its debug lines
# on every call before logging drops them: about 3% of the worker's CPU per relayed message.
SDK_LOG = logging.getLogger("bridge.slack.sdk")
SDK_LOG.setLevel(logging.WARNING)

_LOOKUP_PAGES = 10  # up to 2,000 messages since the delivery was queued

# Errors that a person can fix (a revoked token, the bot not invited): keep the delivery
# and retry, so the child's words arrive once the workspace is set up again.
_RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "team_access_not_granted",
    }
)


class SlackClient:
    """Posts to the consultation channel (or, where a call names one, another channel: a pool's)
    through slack_sdk's AsyncWebClient.

    The SDK's own retries are off: the delivery queue retries, and it checks whether an
    earlier attempt already landed before posting again.
    """

    def __init__(self, *, token: str, base_url: str, channel: str, timeout_s: float) -> None:
        self.channel = channel
        # One long-lived session: without it slack_sdk opens a connection (and in production
        # a TLS handshake) for every call. Must be built inside the running event loop.
        # slack_sdk applies its timeout only to sessions it makes itself, so this one carries it.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        self.web = AsyncWebClient(
            token=token,
            base_url=base_url,
            timeout=int(max(1, timeout_s)),
            retry_handlers=[],
            session=self._session,
            logger=SDK_LOG,
        )

    async def close(self) -> None:
        await self._session.close()

    async def post(
        self,
        *,
        text: str,
        thread_ts: str | None,
        event_type: str,
        payload: dict[str, Any],
        channel: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> tuple[Outcome, str | None]:
        """Post a message (to the case channel unless told otherwise); returns the outcome and
        the new message's ts when delivered."""
        try:
            response = await self.web.chat_postMessage(
                channel=channel or self.channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": event_type, "event_payload": payload},
            )
        except Exception as exc:
            return outcome_of(exc), None
        return DELIVERED, str(response.get("ts"))

    async def find_posted(
        self,
        *,
        thread_ts: str | None,
        oldest: float,
        event_type: str,
        key: str,
        value: Any,
        channel: str | None = None,
    ) -> tuple[bool, str | None]:
        """Look for a message an earlier attempt posted, by its metadata.

        Returns (looked, ts): looked is False when Slack could not be asked (then the caller
        must not post again yet); ts is the message's ts when it was found.
        """
        looked, found = await self.find_metadata(
            thread_ts=thread_ts, oldest=oldest, event_type=event_type, key=key, value=value, channel=channel
        )
        return looked, found[0] if found is not None else None

    async def find_metadata(
        self,
        *,
        thread_ts: str | None,
        oldest: float,
        event_type: str,
        key: str,
        value: Any,
        channel: str | None = None,
        among: str | None = None,
    ) -> tuple[bool, tuple[str, dict[str, Any]] | None]:
        """As find_posted, and the found message's metadata payload with its ts. With among, a
        message whose payload lists value in that field (a post that carried several deliveries)
        is found too."""
        cursor = None
        for _ in range(_LOOKUP_PAGES):
            try:
                if thread_ts:
                    response = await self.web.conversations_replies(
                        channel=channel or self.channel,
                        ts=thread_ts,
                        oldest=f"{oldest:.6f}",
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                else:
                    response = await self.web.conversations_history(
                        channel=channel or self.channel,
                        oldest=f"{oldest:.6f}",
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
            except Exception as exc:
                log.warning("slack lookup failed error=%s", type(exc).__name__)
                return False, None
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") != event_type or not isinstance(payload, dict):
                    continue
                listed = payload.get(among) if among is not None else None
                if payload.get(key) == value or (isinstance(listed, list) and value in listed):
                    return True, (str(message.get("ts")), dict(payload))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return True, None
        return True, None

    async def update(
        self, *, ts: str, text: str, blocks: list[dict[str, Any]] | None = None, channel: str | None = None
    ) -> Outcome:
        """Replace a message's text and blocks (the case root's state line). Idempotent."""
        try:
            await self.web.chat_update(channel=channel or self.channel, ts=ts, text=text, blocks=blocks or [])
        except Exception as exc:
            return outcome_of(exc)
        return DELIVERED

    async def react(self, *, ts: str, name: str, channel: str | None = None) -> Outcome:
        try:
            await self.web.reactions_add(channel=channel or self.channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") == "already_reacted":
                return DELIVERED
            return outcome_of(exc)
        except Exception as exc:
            return outcome_of(exc)
        return DELIVERED

    async def channel_info(self, channel: str | None = None) -> dict[str, Any]:
        """What Slack says of the case channel, or of another (conversations.info). Raises
        SlackApiError or a network error."""
        response = await self.web.conversations_info(channel=channel or self.channel)
        channel = response.get("channel")
        return dict(channel) if isinstance(channel, dict) else {}

    async def channel_members(self, channel: str | None = None) -> list[str]:
        """Everyone in the case channel, or in another (all pages). Raises SlackApiError or a
        network error."""
        members: list[str] = []
        cursor = None
        while True:
            response = await self.web.conversations_members(channel=channel or self.channel, limit=1000, cursor=cursor)
            members += [str(m) for m in response.get("members") or []]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    async def usergroup_members(self, usergroup: str) -> list[str]:
        """The members of a user group. Raises SlackApiError or a network error."""
        response = await self.web.usergroups_users_list(usergroup=usergroup)
        return [str(u) for u in response.get("users") or []]

    async def post_ephemeral(
        self, *, user: str, thread_ts: str | None, text: str, channel: str | None = None
    ) -> Outcome:
        try:
            await self.web.chat_postEphemeral(
                channel=channel or self.channel, user=user, text=text, thread_ts=thread_ts
            )
        except Exception as exc:
            return outcome_of(exc)
        return DELIVERED


def outcome_of(exc: Exception) -> Outcome:
    """How a failed Slack call ended: retry (with a 429's Retry-After), or refused for good."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error") or "")
        if status == 429 or error == "ratelimited":
            value = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            retry_after = float(value) if value and str(value).isdigit() else 1.0
            return Outcome(OutcomeStatus.RETRY, "Slack rate limit", retry_after, rate_limited=True)
        if status >= 500 or error in _RETRY_ERRORS:
            return Outcome(OutcomeStatus.RETRY, f"Slack error {error or status}")
        return Outcome(OutcomeStatus.FAILED, f"Slack refused: {error or status}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return Outcome(OutcomeStatus.RETRY, f"network: {type(exc).__name__}", ambiguous=True)
    return Outcome(OutcomeStatus.RETRY, f"unexpected: {type(exc).__name__}")
