"""Fake Slack Web API with an in-memory model of channels, messages, threads and reactions.

Point ``AsyncWebClient(base_url=fake.url + "/api/")`` at it. Like Slack, answers are
HTTP 200 ``{"ok": true, ...}`` / ``{"ok": false, "error": ...}`` (429 when rate limited).
Arguments are read from the query string, form bodies and JSON bodies alike, because
slack_sdk sends some methods as GET params, some as form posts and some as JSON.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.fakes.server import FakeServer, JsonBody, RecordedRequest, json_response

__all__ = ["FakeSlack"]

MAX_TEXT = 40_000


class _SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class _RateLimit:
    per_second: float
    burst: int
    retry_after: int


def _truthy(value: Any) -> bool:
    # slack_sdk turns bools into "1"/"0" for GET params; JSON bodies keep real bools.
    return value is True or (isinstance(value, int | str) and str(value).lower() in ("1", "true"))


def _ts_key(ts: str, error: str = "invalid_ts") -> tuple[int, int]:
    # Compare as (seconds, micros) integers: "1.5" and "1.500000" are the same instant.
    seconds, _, micros = ts.partition(".")
    try:
        return int(seconds), int(micros.ljust(6, "0")[:6])
    except ValueError:
        raise _SlackError(error) from None


def _json_field(args: dict[str, Any], name: str, error: str) -> Any:
    """Form posts carry structured fields (blocks, metadata) as JSON strings."""
    value = args.get(name)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _SlackError(error) from None
    return value


def _paginate(items: list[dict[str, Any]], args: dict[str, Any], default_limit: int) -> dict[str, Any]:
    """Cursor pagination; the cursor is just the offset, which is opaque to clients."""
    try:
        limit = int(args.get("limit") or default_limit)
        offset = int(args.get("cursor") or 0)
    except ValueError:
        raise _SlackError("invalid_cursor") from None
    limit = max(1, limit)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
    }


class FakeSlack(FakeServer):
    """Fake Slack Web API (``POST``/``GET`` ``/api/<method>``)."""

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        *,
        bot_user_id: str = "UBRIDGEBOT",
        bot_id: str = "BBRIDGEBOT",
        team_id: str = "T0001",
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "conversations.members": self._members_of,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "views.open": self._views_open,
        }
        self._last_ts = 0
        self._init_state()

    def _init_state(self) -> None:
        # ts -> message; insertion order is ts order because ts only grows.
        self._messages: dict[str, dict[str, Any]] = {}
        self._updates: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._reactions: dict[str, list[str]] = {}
        self._members: dict[str, list[str]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._views: list[dict[str, Any]] = []
        self._limits: dict[str, _RateLimit] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _reset_state(self) -> None:
        self._init_state()

    def _default_failure(self, status: int) -> tuple[dict[str, str], JsonBody]:
        if status == 429:
            return {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        return {}, {"ok": False, "error": "fatal_error" if status < 400 else "internal_error"}

    # ------------------------------------------------------------------ test setup

    def set_members(self, channel: str, members: list[str]) -> None:
        """Define the members returned by ``conversations.members`` (and ephemeral checks)."""
        with self._lock:
            self._members[channel] = list(members)

    def members_of_channels(self) -> dict[str, list[str]]:
        with self._lock:
            return copy.deepcopy(self._members)

    def add_user(self, user_id: str, name: str, real_name: str | None = None) -> None:
        """Make ``users.info`` know ``user_id``."""
        real = real_name if real_name is not None else name
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real,
                "deleted": False,
                "is_bot": False,
                "profile": {"display_name": name, "real_name": real},
            }

    def set_usergroup(self, usergroup_id: str, users: list[str]) -> None:
        """Define the users returned by ``usergroups.users.list``."""
        with self._lock:
            self._usergroups[usergroup_id] = list(users)

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Insert a message from a human (not via the API); returns a copy with its new ``ts``."""
        with self._lock:
            if thread_ts is not None:
                thread_ts = self._thread_root(channel, thread_ts)
            msg = self._store(channel, text, thread_ts, blocks, metadata, user=user, bot_id=None, args={})
            return copy.deepcopy(msg)

    def rate_limit(self, method: str, per_second: float | None, burst: int = 1, retry_after: int = 1) -> None:
        """Token-bucket rate limit ``method`` per channel; ``per_second=None`` turns it off.

        A bucket holds ``burst`` calls and refills at ``per_second``; an empty bucket answers
        HTTP 429 with ``Retry-After`` and changes nothing.
        """
        with self._lock:
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != method}
            if per_second is None:
                self._limits.pop(method, None)
            else:
                self._limits[method] = _RateLimit(per_second, burst, retry_after)

    # ------------------------------------------------------------------ accessors

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """All stored messages (roots and replies), optionally of one channel, in ts order."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.values() if channel in (None, m["channel"])]

    def roots(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of ``channel``, oldest first."""
        return [m for m in self.messages(channel) if m["thread_ts"] is None]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Replies (not the root) in the thread ``thread_ts`` of ``channel``, oldest first."""
        return [m for m in self.messages(channel) if m["thread_ts"] == thread_ts]

    def message(self, ts: str) -> dict[str, Any]:
        """The stored message with ``ts`` (KeyError if there is none)."""
        with self._lock:
            if ts not in self._messages:
                raise KeyError(f"no message with ts {ts!r}; known: {list(self._messages)}")
            return copy.deepcopy(self._messages[ts])

    def updates_of(self, ts: str) -> list[dict[str, Any]]:
        """Successive ``chat.update`` results of a message: ``{"text", "blocks", "metadata", "args"}``."""
        with self._lock:
            return copy.deepcopy(self._updates.get(ts, []))

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages in order: ``{channel, user, text, blocks, thread_ts, message_ts}``."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if channel in (None, e["channel"])]

    def views(self) -> list[dict[str, Any]]:
        """Windows opened with ``views.open``, oldest first: {"trigger_id", "view", "id"}."""
        with self._lock:
            return copy.deepcopy(self._views)

    def reactions_on(self, ts: str) -> list[str]:
        """Reaction names currently on the message ``ts``, in the order they were added."""
        with self._lock:
            return list(self._reactions.get(ts, []))

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: RecordedRequest) -> web.Response:
        """Authenticate, rate-limit and run one Web API method (lock held by the base class)."""
        if not request.path.startswith("/api/"):
            return json_response({"ok": False, "error": "unknown_method"}, status=404)
        method = request.path.removeprefix("/api/")
        args: dict[str, Any] = dict(request.query)
        if isinstance(request.json, dict):
            args.update(request.json)
        token = args.pop("token", None)
        auth = request.headers.get("authorization")
        if auth != f"Bearer {self.bot_token}" and token != self.bot_token:
            error = "not_authed" if auth is None and token is None else "invalid_auth"
            return json_response({"ok": False, "error": error})
        limited = self._check_rate_limit(method, str(args.get("channel", "")))
        if limited is not None:
            return limited
        handler = self._methods.get(method)
        if handler is None:
            return json_response({"ok": False, "error": "unknown_method"})
        try:
            return json_response({"ok": True, **handler(args)})
        except _SlackError as exc:
            return json_response({"ok": False, "error": exc.code})

    def _check_rate_limit(self, method: str, channel: str) -> web.Response | None:
        limit = self._limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        bucket = self._buckets.setdefault((method, channel), _Bucket(float(limit.burst), now))
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(limit.retry_after)},
            )
        bucket.tokens -= 1.0
        return None

    # ------------------------------------------------------------------ model helpers

    def _next_ts(self) -> str:
        # Wall-clock based like Slack, but strictly increasing across all channels.
        micros = max(self._last_ts + 1, int(time.time() * 1_000_000))
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _store(
        self,
        channel: str,
        text: str,
        thread_ts: str | None,
        blocks: Any,
        metadata: Any,
        *,
        user: str,
        bot_id: str | None,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        ts = self._next_ts()
        msg = {
            "channel": channel,
            "ts": ts,
            "thread_ts": thread_ts,
            "text": text,
            "blocks": blocks,
            "metadata": metadata,
            "user": user,
            "bot_id": bot_id,
            "args": copy.deepcopy(args),
        }
        self._messages[ts] = msg
        return msg

    def _find(self, channel: str, ts: str, error: str) -> dict[str, Any]:
        msg = self._messages.get(ts)
        if msg is None or msg["channel"] != channel:
            raise _SlackError(error)
        return msg

    def _thread_root(self, channel: str, thread_ts: str) -> str:
        parent = self._find(channel, thread_ts, "thread_not_found")
        # Replying to a reply lands in the same thread, as in Slack.
        return str(parent["thread_ts"] or parent["ts"])

    def _render(self, msg: dict[str, Any], *, with_metadata: bool = True) -> dict[str, Any]:
        """A message as the Web API shows it (thread summary and reactions included)."""
        out: dict[str, Any] = {"type": "message", "user": msg["user"], "text": msg["text"], "ts": msg["ts"]}
        if msg["bot_id"]:
            out["bot_id"] = msg["bot_id"]
        if msg["blocks"]:
            out["blocks"] = msg["blocks"]
        if msg["thread_ts"]:
            out["thread_ts"] = msg["thread_ts"]
            out["parent_user_id"] = self._messages[msg["thread_ts"]]["user"]
        else:
            replies = [m for m in self._messages.values() if m["thread_ts"] == msg["ts"]]
            if replies:
                out["thread_ts"] = msg["ts"]
                out["reply_count"] = len(replies)
                out["reply_users"] = sorted({m["user"] for m in replies})
                out["latest_reply"] = replies[-1]["ts"]
        if self._reactions.get(msg["ts"]):
            out["reactions"] = [
                {"name": n, "users": [self.bot_user_id], "count": 1} for n in self._reactions[msg["ts"]]
            ]
        if with_metadata and msg["metadata"]:
            out["metadata"] = msg["metadata"]
        return copy.deepcopy(out)

    def _content_fields(self, args: dict[str, Any]) -> tuple[Any, Any]:
        blocks = _json_field(args, "blocks", "invalid_blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise _SlackError("invalid_blocks")
        metadata = _json_field(args, "metadata", "invalid_metadata_format")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise _SlackError("invalid_metadata_format")
        return blocks, metadata

    # ------------------------------------------------------------------ methods

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://test.slack.com/",
            "team": "test",
            "user": "bridge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
        }

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        blocks, metadata = self._content_fields(args)
        text = args.get("text")
        if not text and not blocks and not args.get("attachments"):
            raise _SlackError("no_text")
        text = str(text or "")
        if len(text) > MAX_TEXT:
            raise _SlackError("msg_too_long")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = self._thread_root(channel, str(thread_ts))
        msg = self._store(
            channel, text, thread_ts, blocks, metadata, user=self.bot_user_id, bot_id=self.bot_id, args=args
        )
        return {"channel": channel, "ts": msg["ts"], "message": self._render(msg)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        msg = self._find(channel, str(args.get("ts", "")), "message_not_found")
        if msg["user"] != self.bot_user_id:
            raise _SlackError("cant_update_message")
        blocks, metadata = self._content_fields(args)
        text = args.get("text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise _SlackError("msg_too_long")
        # Only the fields present in the call change, as with the real method.
        if text is not None:
            msg["text"] = str(text)
        if "blocks" in args:
            msg["blocks"] = blocks
        if metadata is not None:
            msg["metadata"] = metadata
        self._updates.setdefault(msg["ts"], []).append(
            {
                "text": msg["text"],
                "blocks": copy.deepcopy(msg["blocks"]),
                "metadata": copy.deepcopy(msg["metadata"]),
                "args": copy.deepcopy(args),
            }
        )
        return {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": self._render(msg)}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        user = args.get("user")
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if not isinstance(user, str) or not user:
            raise _SlackError("user_not_found")
        if channel in self._members and user not in self._members[channel]:
            raise _SlackError("user_not_in_channel")
        blocks, _ = self._content_fields(args)
        text = args.get("text")
        if not text and not blocks:
            raise _SlackError("no_text")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = self._thread_root(channel, str(thread_ts))
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": str(text or ""),
                "blocks": blocks,
                "thread_ts": thread_ts,
                "message_ts": ts,
            }
        )
        return {"message_ts": ts}

    def _reaction_target(self, args: dict[str, Any]) -> tuple[str, list[str]]:
        name = str(args.get("name") or "").strip(":")
        if not name:
            raise _SlackError("invalid_name")
        msg = self._find(str(args.get("channel", "")), str(args.get("timestamp", "")), "message_not_found")
        return name, self._reactions.setdefault(msg["ts"], [])

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        name, names = self._reaction_target(args)
        if name in names:
            raise _SlackError("already_reacted")
        names.append(name)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        name, names = self._reaction_target(args)
        if name not in names:
            raise _SlackError("no_reaction")
        names.remove(name)
        return {}

    def _in_range(self, ts: str, args: dict[str, Any]) -> bool:
        inclusive = _truthy(args.get("inclusive"))
        key = _ts_key(ts)
        if args.get("oldest"):
            oldest = _ts_key(str(args["oldest"]), "invalid_ts_oldest")
            if key < oldest or (key == oldest and not inclusive):
                return False
        if args.get("latest"):
            latest = _ts_key(str(args["latest"]), "invalid_ts_latest")
            if key > latest or (key == latest and not inclusive):
                return False
        return True

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        root_ts = self._thread_root(channel, str(args.get("ts", "")))
        with_metadata = _truthy(args.get("include_all_metadata"))
        replies = [
            m
            for m in self._messages.values()
            if m["thread_ts"] == root_ts and m["channel"] == channel and self._in_range(m["ts"], args)
        ]
        # Slack always returns the parent first, whatever oldest/latest say.
        items = [self._render(m, with_metadata=with_metadata) for m in [self._messages[root_ts], *replies]]
        return _paginate(items, args, default_limit=1000)

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if not channel:
            raise _SlackError("channel_not_found")
        with_metadata = _truthy(args.get("include_all_metadata"))
        roots = [
            m
            for m in self._messages.values()
            if m["channel"] == channel and m["thread_ts"] is None and self._in_range(m["ts"], args)
        ]
        items = [self._render(m, with_metadata=with_metadata) for m in reversed(roots)]
        return _paginate(items, args, default_limit=100)

    def _members_of(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self._members:
            raise _SlackError("channel_not_found")
        return {"members": list(self._members[channel]), "response_metadata": {"next_cursor": ""}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = str(args.get("trigger_id") or "")
        if not trigger:
            raise _SlackError("invalid_trigger_id")
        view = _json_field(args, "view", "invalid_arguments")
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("blocks"):
            raise _SlackError("invalid_arguments")
        opened = {"trigger_id": trigger, "view": view, "id": f"V{len(self._views) + 1:08d}"}
        self._views.append(opened)
        return {"view": {**view, "id": opened["id"]}}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self._usergroups.get(str(args.get("usergroup", "")))
        if users is None:
            raise _SlackError("no_such_subteam")
        return {"users": list(users)}
