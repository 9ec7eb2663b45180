"""Fake Slack Web API with an in-memory model of channels, messages, threads and reactions.

Point ``AsyncWebClient(base_url=fake.url + "/api/")`` at it. Like Slack, answers are
HTTP 200 ``{"ok": true, ...}`` / ``{"ok": false, "error": ...}`` (429 when rate limited).
Arguments are read from the query string, form bodies and JSON bodies alike, because
slack_sdk sends some methods as GET params, some as form posts and some as JSON.

This module is what a test holds: :class:`FakeSlack` checks the token, applies the rate limits
set with :meth:`~FakeSlack.rate_limit`, and hands each call to its method in
:mod:`bridge.fakes.slack_methods`; a test puts channels' members, users, user groups and human
messages in with the *test setup* methods and reads back what the bridge did with the
*accessors*, which return copies (changing one changes nothing in the fake).
"""

from __future__ import annotations

import collections
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.fakes.faults import JsonBody
from bridge.fakes.server import FakeServer, RecordedRequest, json_response
from bridge.fakes.slack_methods import SlackError, SlackMethods

__all__ = ["FakeSlack"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class _RateLimit:
    per_second: float
    burst: int
    retry_after: int | None  # None: the seconds until the bucket holds a call again, rounded up


# Slack's documented limit of chat.postMessage: about one message per second per channel, with
# short bursts allowed (the fake allows three).
SLACK_POSTS_PER_SECOND = 1.0
SLACK_POST_BURST = 3


class FakeSlack(SlackMethods, FakeServer):
    """Fake Slack Web API (``POST``/``GET`` ``/api/<method>``)."""

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        *,
        bot_user_id: str = "UBRIDGEBOT",
        bot_id: str = "BBRIDGEBOT",
        team_id: str = "T0001",
        app_id: str = "A0001",
        enterprise_id: str | None = None,
    ) -> None:
        """The fake workspace's identity: what ``auth.test`` and ``bots.info`` answer, and what a
        test puts in a request to be one from this app and workspace (or changes, to be one that
        is not)."""
        super().__init__()
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.app_id = app_id
        self.enterprise_id = enterprise_id
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "conversations.members": self._members_of,
            "conversations.info": self._conversation_info,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "views.open": self._views_open,
        }
        self._last_ts = 0
        self._ts_from: int | None = None
        self._last_ts_in: dict[str, int] = {}
        self._init_state()

    def _init_state(self) -> None:
        # (channel, ts) -> message, in the order stored (which is ts order within a channel).
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._updates: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._reactions: dict[tuple[str, str], list[str]] = {}
        self._members: dict[str, list[str]] = {}
        self._channel_info: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._views: list[dict[str, Any]] = []
        self._limits: dict[str, _RateLimit] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._limited: collections.Counter[tuple[str, str]] = collections.Counter()

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

    def set_channel_info(self, channel: str, **info: Any) -> None:
        """Override what ``conversations.info`` says of a channel (by default every channel is
        private and shared with nobody), e.g. ``is_private=False`` or ``is_ext_shared=True``."""
        with self._lock:
            self._channel_info[channel] = dict(info)

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

    def same_ts_in_every_channel(self, at: float) -> None:
        """From now on each channel numbers its own messages from ``at`` (seconds): the k-th
        message posted in every channel gets the same ts, ``at`` plus k µs, as Slack may (a ts
        is unique only within its channel). Choose ``at`` after every ts given so far. The
        accessors that take a ts then want its channel too, where two channels have it."""
        with self._lock:
            self._ts_from = int(at * 1_000_000)
            self._last_ts_in = {}

    def rate_limit(self, method: str, per_second: float | None, burst: int = 1, retry_after: int | None = 1) -> None:
        """Token-bucket rate limit ``method`` per channel; ``per_second=None`` turns it off.

        A bucket holds ``burst`` calls and refills at ``per_second``; an empty bucket answers
        HTTP 429 with ``Retry-After`` (these seconds, or with None the whole seconds until the
        bucket holds a call again, as Slack does) and changes nothing. Each such answer is
        counted (:meth:`rate_limited`).
        """
        with self._lock:
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != method}
            if per_second is None:
                self._limits.pop(method, None)
            else:
                self._limits[method] = _RateLimit(per_second, burst, retry_after)

    def limit_posts_like_slack(self) -> None:
        """Slack's documented limit of ``chat.postMessage``: one message per second per channel,
        bursts of three; beyond it HTTP 429 with ``Retry-After`` in whole seconds."""
        self.rate_limit("chat.postMessage", per_second=SLACK_POSTS_PER_SECOND, burst=SLACK_POST_BURST, retry_after=None)

    # ------------------------------------------------------------------ accessors

    def rate_limited(self, method: str | None = None, channel: str | None = None) -> int:
        """How many calls the rate limits answered 429 (of one method, into one channel)."""
        with self._lock:
            return sum(n for (m, c), n in self._limited.items() if method in (None, m) and channel in (None, c))

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

    def _key(self, ts: str, channel: str | None) -> tuple[str, str]:
        """The message with ``ts`` (in ``channel``, or in the one channel that has that ts)."""
        if channel is not None:
            return channel, ts
        keys = [key for key in self._messages if key[1] == ts]
        if len(keys) > 1:
            raise KeyError(f"ts {ts!r} is in several channels {[k[0] for k in keys]}: name the channel")
        return keys[0] if keys else ("", ts)

    def message(self, ts: str, channel: str | None = None) -> dict[str, Any]:
        """The stored message with ``ts`` (KeyError if there is none)."""
        with self._lock:
            key = self._key(ts, channel)
            if key not in self._messages:
                raise KeyError(f"no message with ts {ts!r}; known: {[k[1] for k in self._messages]}")
            return copy.deepcopy(self._messages[key])

    def updates_of(self, ts: str, channel: str | None = None) -> list[dict[str, Any]]:
        """Successive ``chat.update`` results of a message: ``{"text", "blocks", "metadata", "args"}``."""
        with self._lock:
            return copy.deepcopy(self._updates.get(self._key(ts, channel), []))

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages in order: ``{channel, user, text, blocks, thread_ts, message_ts}``."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if channel in (None, e["channel"])]

    def views(self) -> list[dict[str, Any]]:
        """Windows opened with ``views.open``, oldest first: {"trigger_id", "view", "id"}."""
        with self._lock:
            return copy.deepcopy(self._views)

    def reactions_on(self, ts: str, channel: str | None = None) -> list[str]:
        """Reaction names currently on the message ``ts``, in the order they were added."""
        with self._lock:
            return list(self._reactions.get(self._key(ts, channel), []))

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
        except SlackError as exc:
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
            self._limited[(method, channel)] += 1
            retry_after = limit.retry_after
            if retry_after is None:
                retry_after = max(1, math.ceil((1.0 - bucket.tokens) / limit.per_second))
            return json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        bucket.tokens -= 1.0
        return None
