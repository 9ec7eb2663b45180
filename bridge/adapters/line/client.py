"""The LINE Messaging API client (line-bot-sdk v3, async): pushes and replies, each outcome
classified as delivered, retry or failed."""

from __future__ import annotations

import json
import logging

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)

from bridge.core.retry import DELIVERED, Outcome, OutcomeStatus

log = logging.getLogger("bridge.line")


class LineClient:
    """Pushes and replies through line-bot-sdk v3 (async).

    Keeps two configurations: the SDK sends content downloads to Configuration.host when
    host is set, and content lives on the data API host.
    """

    def __init__(self, *, access_token: str, api_base_url: str, data_api_base_url: str, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._api_client = AsyncApiClient(Configuration(host=api_base_url, access_token=access_token))
        self._data_client = AsyncApiClient(Configuration(host=data_api_base_url, access_token=access_token))
        self.messaging = AsyncMessagingApi(self._api_client)

    async def close(self) -> None:
        await self._api_client.close()
        await self._data_client.close()

    async def push(self, to: str, texts: tuple[str, ...], retry_key: str) -> Outcome:
        request = PushMessageRequest(to=to, messages=[TextMessage(text=t) for t in texts])
        try:
            await self.messaging.push_message_with_http_info(
                request, x_line_retry_key=retry_key, _request_timeout=self._timeout_s
            )
        except ApiException as exc:
            if exc.status == 409:
                return DELIVERED  # this retry key was accepted before: the child has it
            return _classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(OutcomeStatus.RETRY, f"network: {type(exc).__name__}", ambiguous=True)
        return DELIVERED

    async def reply(self, reply_token: str, texts: tuple[str, ...]) -> Outcome:
        request = ReplyMessageRequest(reply_token=reply_token, messages=[TextMessage(text=t) for t in texts])
        try:
            await self.messaging.reply_message_with_http_info(request, _request_timeout=self._timeout_s)
        except ApiException as exc:
            if exc.status == 400:
                return Outcome(OutcomeStatus.REPLY_TOKEN_REJECTED, "reply token no longer valid")
            return _classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(OutcomeStatus.RETRY, f"network: {type(exc).__name__}", ambiguous=True)
        return DELIVERED


def _classify(exc: ApiException) -> Outcome:
    status = int(exc.status or 0)
    if status == 429 or status >= 500:
        retry_after = None
        headers = exc.headers or {}
        value = headers.get("Retry-After") or headers.get("retry-after")
        if value and str(value).isdigit():
            retry_after = float(value)
        return Outcome(OutcomeStatus.RETRY, f"LINE answered {status}", retry_after, rate_limited=status == 429)
    return Outcome(OutcomeStatus.FAILED, f"LINE refused the message ({status}{_line_message(exc)})")


def _line_message(exc: ApiException) -> str:
    # LINE's error body has a short English message (never the message content we sent).
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message[:120]}" if isinstance(message, str) and message else ""
