"""Fake LINE Messaging API (api.line.me and api-data.line.me on one server).

Shapes follow LINE's OpenAPI spec (messaging-api.yml): ``ErrorResponse`` is
``{"message", "details"?: [{"message", "property"}], "sentMessages"?}``.
"""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from aiohttp import web

from bridge.fakes.faults import JsonBody
from bridge.fakes.server import FakeServer, RecordedRequest, json_response

__all__ = ["FakeLine"]

MAX_TEXT_UTF16 = 5000
MAX_MESSAGES = 5
# Message types LINE can quote, hence the ones that get a quoteToken back.
_QUOTABLE = frozenset({"text", "textV2", "sticker", "image", "video"})

_Handler = Callable[["FakeLine", RecordedRequest, dict[str, str]], web.Response]


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (emoji outside the BMP count as 2)."""
    return len(text.encode("utf-16-le")) // 2


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


def _error(message: str, status: int = 400, details: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return json_response(body, status=status)


def _validation_error(details: list[dict[str, str]]) -> web.Response:
    return _error(f"The request body has {len(details)} error(s)", details=details)


def _validate_messages(messages: Any) -> list[dict[str, str]]:
    """Return LINE-style error details for a ``messages`` array (empty when valid)."""
    if not isinstance(messages, list):
        return [{"message": "must be specified", "property": "messages"}]
    if not 1 <= len(messages) <= MAX_MESSAGES:
        return [{"message": f"Size must be between 1 and {MAX_MESSAGES}", "property": "messages"}]
    details: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        prop = f"messages[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str) or not msg["type"]:
            details.append({"message": "must be specified", "property": f"{prop}.type"})
            continue
        if msg["type"] == "text":
            text = msg.get("text")
            if not isinstance(text, str) or not text:
                details.append({"message": "must be specified", "property": f"{prop}.text"})
            elif utf16_len(text) > MAX_TEXT_UTF16:
                details.append(
                    {"message": f"Length must be between 0 and {MAX_TEXT_UTF16}", "property": f"{prop}.text"}
                )
    return details


class FakeLine(FakeServer):
    """Fake LINE Messaging API. Point ``Configuration(host=fake.url)`` at it."""

    #: (HTTP method, path template) for every endpoint served; all exist in messaging-api.yml.
    SERVED_PATHS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("POST", "/v2/bot/message/push"),
        ("POST", "/v2/bot/message/reply"),
        ("GET", "/v2/bot/profile/{userId}"),
        ("POST", "/v2/bot/chat/loading/start"),
        ("POST", "/v2/bot/message/markAsRead"),
        ("POST", "/v2/bot/chat/markAsRead"),
        ("GET", "/v2/bot/message/{messageId}/content"),
        ("GET", "/v2/bot/message/{messageId}/content/transcoding"),
    )

    DISPLAY_NAME = "テスト太郎"

    def __init__(self, access_token: str = "line-test-token") -> None:
        super().__init__()
        self.access_token = access_token
        handlers: dict[str, _Handler] = {
            "/v2/bot/message/push": FakeLine._push,
            "/v2/bot/message/reply": FakeLine._reply,
            "/v2/bot/profile/{userId}": FakeLine._profile,
            "/v2/bot/chat/loading/start": FakeLine._loading,
            "/v2/bot/message/markAsRead": FakeLine._mark_as_read,
            "/v2/bot/chat/markAsRead": FakeLine._mark_as_read_by_token,
            "/v2/bot/message/{messageId}/content": FakeLine._content,
            "/v2/bot/message/{messageId}/content/transcoding": FakeLine._transcoding,
        }
        self._routes = [(m, _compile(t), handlers[t]) for m, t in self.SERVED_PATHS]
        # Sent-message ids are process-unique and increasing, like LINE's numeric ids.
        self._ids = itertools.count(500_000_000_000_000_001)
        self._init_state()

    def _init_state(self) -> None:
        self._pushes: list[dict[str, Any]] = []
        self._replies: list[dict[str, Any]] = []
        # retry key -> (request id, sentMessages) of the push that first used it.
        self._retry_keys: dict[str, tuple[str, list[dict[str, str]]]] = {}
        self._used_reply_tokens: set[str] = set()
        self._expired_reply_tokens: set[str] = set()
        self._contents: dict[str, tuple[bytes, str]] = {}
        self._loading_calls: list[dict[str, Any]] = []
        self._read: list[dict[str, Any]] = []

    def _reset_state(self) -> None:
        self._init_state()

    def _default_failure(self, status: int) -> tuple[dict[str, str], JsonBody]:
        messages = {429: "You have reached your monthly limit.", 500: "Internal server error"}
        return {"x-line-request-id": str(uuid.uuid4())}, {"message": messages.get(status, f"Error {status}")}

    # ------------------------------------------------------------------ test setup

    def expire_reply_token(self, token: str) -> None:
        """Make ``token`` invalid, as if its webhook event were older than the reply window."""
        with self._lock:
            self._expired_reply_tokens.add(token)

    def set_content(self, message_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Serve ``data`` at ``GET /v2/bot/message/{message_id}/content``."""
        with self._lock:
            self._contents[message_id] = (data, content_type)

    # ------------------------------------------------------------------ accessors

    def accepted_pushes(self) -> list[dict[str, Any]]:
        """Pushes answered 200, in order: ``{"to", "messages", "retry_key"}``."""
        with self._lock:
            return copy.deepcopy(self._pushes)

    def accepted_replies(self) -> list[dict[str, Any]]:
        """Replies answered 200, in order: ``{"reply_token", "messages"}``."""
        with self._lock:
            return copy.deepcopy(self._replies)

    def texts_to(self, user_id: str) -> list[str]:
        """Texts of all accepted pushes to ``user_id``, in order."""
        return [
            m["text"]
            for p in self.accepted_pushes()
            if p["to"] == user_id
            for m in p["messages"]
            if m.get("type") == "text"
        ]

    def reply_texts(self) -> list[str]:
        """Texts of all accepted replies, in order."""
        return [m["text"] for r in self.accepted_replies() for m in r["messages"] if m.get("type") == "text"]

    def loading_started(self) -> list[dict[str, Any]]:
        """Accepted loading-animation requests (``{"chatId", "loadingSeconds"?}``), in order."""
        with self._lock:
            return copy.deepcopy(self._loading_calls)

    def marked_read(self) -> list[dict[str, Any]]:
        """Accepted mark-as-read bodies (either endpoint), in order."""
        with self._lock:
            return copy.deepcopy(self._read)

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: RecordedRequest) -> web.Response:
        """Authenticate, route and answer one request (lock held by the base class)."""
        response = self._dispatch(request)
        # Real LINE stamps every response with a request id; clients log it.
        response.headers.setdefault("x-line-request-id", str(uuid.uuid4()))
        return response

    def _dispatch(self, request: RecordedRequest) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _error(
                "Authentication failed. Confirm that the access token in the authorization header is valid.",
                status=401,
            )
        path_known = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            path_known = True
            if method == request.method:
                return handler(self, request, match.groupdict())
        if path_known:
            return _error("Method not allowed", status=405)
        return _error("Not found", status=404)

    # ------------------------------------------------------------------ endpoints

    def _sent_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        sent = []
        for msg in messages:
            item = {"id": str(next(self._ids))}
            if msg["type"] in _QUOTABLE:
                item["quoteToken"] = f"q{uuid.uuid4().hex}"
            sent.append(item)
        return sent

    def _push(self, request: RecordedRequest, _: dict[str, str]) -> web.Response:
        retry_key = request.headers.get("x-line-retry-key")
        if retry_key is not None:
            try:
                uuid.UUID(retry_key)
            except ValueError:
                return _error("The value for the 'X-Line-Retry-Key' header is invalid")
            if retry_key in self._retry_keys:
                request_id, sent = self._retry_keys[retry_key]
                return json_response(
                    {"message": "The retry key is already accepted", "sentMessages": sent},
                    status=409,
                    headers={"x-line-accepted-request-id": request_id},
                )
        body = request.json
        if not isinstance(body, dict):
            return _validation_error([{"message": "must be a JSON object", "property": ""}])
        details = []
        if not isinstance(body.get("to"), str) or not body["to"]:
            details.append({"message": "must be specified", "property": "to"})
        details += _validate_messages(body.get("messages"))
        if details:
            return _validation_error(details)
        sent = self._sent_messages(body["messages"])
        request_id = str(uuid.uuid4())
        if retry_key is not None:
            self._retry_keys[retry_key] = (request_id, sent)
        self._pushes.append({"to": body["to"], "messages": body["messages"], "retry_key": retry_key})
        return json_response({"sentMessages": sent}, headers={"x-line-request-id": request_id})

    def _reply(self, request: RecordedRequest, _: dict[str, str]) -> web.Response:
        body = request.json
        if not isinstance(body, dict):
            return _validation_error([{"message": "must be a JSON object", "property": ""}])
        details = []
        token = body.get("replyToken")
        if not isinstance(token, str) or not token:
            details.append({"message": "must be specified", "property": "replyToken"})
        details += _validate_messages(body.get("messages"))
        if details or not isinstance(token, str):
            return _validation_error(details)
        if token in self._used_reply_tokens or token in self._expired_reply_tokens:
            return _error("Invalid reply token")
        self._used_reply_tokens.add(token)
        self._replies.append({"reply_token": token, "messages": body["messages"]})
        return json_response({"sentMessages": self._sent_messages(body["messages"])})

    def _profile(self, _: RecordedRequest, params: dict[str, str]) -> web.Response:
        user_id = params["userId"]
        return json_response(
            {
                "userId": user_id,
                "displayName": self.DISPLAY_NAME,
                "pictureUrl": f"https://profile.line-scdn.net/fake/{user_id}",
                "statusMessage": "こんにちは",
                "language": "ja",
            }
        )

    def _loading(self, request: RecordedRequest, _: dict[str, str]) -> web.Response:
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("chatId"), str) or not body["chatId"]:
            return _validation_error([{"message": "must be specified", "property": "chatId"}])
        seconds = body.get("loadingSeconds")
        if seconds is not None and (not isinstance(seconds, int) or not 5 <= seconds <= 60 or seconds % 5 != 0):
            return _validation_error(
                [{"message": "must be a multiple of 5 between 5 and 60", "property": "loadingSeconds"}]
            )
        self._loading_calls.append(body)
        return json_response({}, status=202)

    def _mark_as_read(self, request: RecordedRequest, _: dict[str, str]) -> web.Response:
        body = request.json
        chat = body.get("chat") if isinstance(body, dict) else None
        if not isinstance(chat, dict) or not isinstance(chat.get("userId"), str):
            return _validation_error([{"message": "must be specified", "property": "chat.userId"}])
        self._read.append(body)
        return json_response({})

    def _mark_as_read_by_token(self, request: RecordedRequest, _: dict[str, str]) -> web.Response:
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("markAsReadToken"), str):
            return _validation_error([{"message": "must be specified", "property": "markAsReadToken"}])
        self._read.append(body)
        return json_response({})

    def _content(self, _: RecordedRequest, params: dict[str, str]) -> web.Response:
        found = self._contents.get(params["messageId"])
        if found is None:
            return _error("Not found", status=404)
        data, content_type = found
        # Via headers so content types with parameters (charset=...) are served verbatim.
        return web.Response(body=data, headers={"Content-Type": content_type})

    def _transcoding(self, _: RecordedRequest, params: dict[str, str]) -> web.Response:
        if params["messageId"] not in self._contents:
            return _error("Not found", status=404)
        return json_response({"status": "succeeded"})
