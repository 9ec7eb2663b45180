"""What each Slack Web API method of the fake does to its in-memory workspace.

:class:`SlackMethods` is the half of :class:`bridge.fakes.slack.FakeSlack` that answers the
Web API: ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``reactions.add`` /
``remove``, ``conversations.replies`` / ``history`` / ``members``, ``users.info``,
``usergroups.users.list``, ``views.open``, ``auth.test`` and ``bots.info``. A caller (the fake's dispatch) can
rely on each handler taking the call's arguments as one dict (query string, form and JSON
merged), returning the fields of an ``{"ok": true, ...}`` answer, and raising
:class:`SlackError` with Slack's own error code (``channel_not_found``, ``msg_too_long``, ...)
instead. Like Slack: a reply to a reply lands in the root's thread, ``ts`` values only grow
(within a channel; across channels too unless a test asks for the same ts in every channel, as
Slack may give: a ts is unique only within its channel), only the bot's own messages can be
updated, a message over :data:`MAX_TEXT` characters is refused, and history and replies are
paginated by an opaque cursor.

Handlers run with the fake's lock held (FakeSlack's dispatch calls them).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from bridge.fakes.slack_args import SlackError, json_field, paginate, truthy, ts_key, valid_blocks

__all__ = ["MAX_TEXT", "SlackError", "SlackMethods"]

MAX_TEXT = 40_000


class SlackMethods:
    """The fake's workspace model and its Web API method handlers (mixed into FakeSlack)."""

    # Set by FakeSlack (its constructor and its state).
    bot_user_id: str
    bot_id: str
    team_id: str
    app_id: str
    enterprise_id: str | None
    _last_ts: int
    _ts_from: int | None  # per channel from this instant (µs), or None: one clock for all channels
    _last_ts_in: dict[str, int]
    _messages: dict[tuple[str, str], dict[str, Any]]  # (channel, ts) -> message, in the order stored
    _updates: dict[tuple[str, str], list[dict[str, Any]]]
    _ephemerals: list[dict[str, Any]]
    _reactions: dict[tuple[str, str], list[str]]
    _members: dict[str, list[str]]
    _channel_info: dict[str, dict[str, Any]]
    _users: dict[str, dict[str, Any]]
    _usergroups: dict[str, list[str]]
    _views: list[dict[str, Any]]

    # ------------------------------------------------------------------ model helpers

    def _next_ts(self, channel: str) -> str:
        if self._ts_from is not None:
            # Each channel counts from the same instant: its k-th message has the same ts in all.
            micros = self._last_ts_in[channel] = self._last_ts_in.get(channel, self._ts_from) + 1
        else:
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
        ts = self._next_ts(channel)
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
        self._messages[(channel, ts)] = msg
        return msg

    def _find(self, channel: str, ts: str, error: str) -> dict[str, Any]:
        msg = self._messages.get((channel, ts))
        if msg is None:
            raise SlackError(error)
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
            out["parent_user_id"] = self._messages[(msg["channel"], msg["thread_ts"])]["user"]
        else:
            replies = [
                m for m in self._messages.values() if m["thread_ts"] == msg["ts"] and m["channel"] == msg["channel"]
            ]
            if replies:
                out["thread_ts"] = msg["ts"]
                out["reply_count"] = len(replies)
                out["reply_users"] = sorted({m["user"] for m in replies})
                out["latest_reply"] = replies[-1]["ts"]
        if names := self._reactions.get((msg["channel"], msg["ts"])):
            out["reactions"] = [{"name": n, "users": [self.bot_user_id], "count": 1} for n in names]
        if with_metadata and msg["metadata"]:
            out["metadata"] = msg["metadata"]
        return copy.deepcopy(out)

    def _content_fields(self, args: dict[str, Any]) -> tuple[Any, Any]:
        blocks = json_field(args, "blocks", "invalid_blocks")
        if blocks is not None and not valid_blocks(blocks):
            raise SlackError("invalid_blocks")
        metadata = json_field(args, "metadata", "invalid_metadata_format")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackError("invalid_metadata_format")
        return blocks, metadata

    # ------------------------------------------------------------------ methods

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        # As Slack answers for a bot token; enterprise_id only in an Enterprise Grid organisation.
        answer: dict[str, Any] = {
            "url": "https://test.slack.com/",
            "team": "test",
            "user": "bridge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
        if self.enterprise_id is not None:
            answer["enterprise_id"] = self.enterprise_id
        return answer

    def _bots_info(self, args: dict[str, Any]) -> dict[str, Any]:
        # Only the bridge's own bot is known; Slack answers bot_not_found for a bot it cannot see.
        if args.get("bot") != self.bot_id:
            raise SlackError("bot_not_found")
        return {"bot": {"id": self.bot_id, "deleted": False, "app_id": self.app_id, "user_id": self.bot_user_id}}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            raise SlackError("channel_not_found")
        blocks, metadata = self._content_fields(args)
        text = args.get("text")
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        text = str(text or "")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
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
            raise SlackError("cant_update_message")
        blocks, metadata = self._content_fields(args)
        text = args.get("text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        # Only the fields present in the call change, as with the real method.
        if text is not None:
            msg["text"] = str(text)
        if "blocks" in args:
            msg["blocks"] = blocks
        if metadata is not None:
            msg["metadata"] = metadata
        self._updates.setdefault((channel, msg["ts"]), []).append(
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
            raise SlackError("channel_not_found")
        if not isinstance(user, str) or not user:
            raise SlackError("user_not_found")
        if channel in self._members and user not in self._members[channel]:
            raise SlackError("user_not_in_channel")
        blocks, _ = self._content_fields(args)
        text = args.get("text")
        if not text and not blocks:
            raise SlackError("no_text")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = self._thread_root(channel, str(thread_ts))
        ts = self._next_ts(channel)
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
            raise SlackError("invalid_name")
        msg = self._find(str(args.get("channel", "")), str(args.get("timestamp", "")), "message_not_found")
        return name, self._reactions.setdefault((msg["channel"], msg["ts"]), [])

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        name, names = self._reaction_target(args)
        if name in names:
            raise SlackError("already_reacted")
        names.append(name)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        name, names = self._reaction_target(args)
        if name not in names:
            raise SlackError("no_reaction")
        names.remove(name)
        return {}

    def _in_range(self, ts: str, args: dict[str, Any]) -> bool:
        inclusive = truthy(args.get("inclusive"))
        key = ts_key(ts)
        if args.get("oldest"):
            oldest = ts_key(str(args["oldest"]), "invalid_ts_oldest")
            if key < oldest or (key == oldest and not inclusive):
                return False
        if args.get("latest"):
            latest = ts_key(str(args["latest"]), "invalid_ts_latest")
            if key > latest or (key == latest and not inclusive):
                return False
        return True

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        root_ts = self._thread_root(channel, str(args.get("ts", "")))
        with_metadata = truthy(args.get("include_all_metadata"))
        replies = [
            m
            for m in self._messages.values()
            if m["thread_ts"] == root_ts and m["channel"] == channel and self._in_range(m["ts"], args)
        ]
        # Slack always returns the parent first, whatever oldest/latest say.
        parent = self._messages[(channel, root_ts)]
        items = [self._render(m, with_metadata=with_metadata) for m in [parent, *replies]]
        return paginate(items, args, default_limit=1000)

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if not channel:
            raise SlackError("channel_not_found")
        with_metadata = truthy(args.get("include_all_metadata"))
        roots = [
            m
            for m in self._messages.values()
            if m["channel"] == channel and m["thread_ts"] is None and self._in_range(m["ts"], args)
        ]
        items = [self._render(m, with_metadata=with_metadata) for m in reversed(roots)]
        return paginate(items, args, default_limit=100)

    def _members_of(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self._members:
            raise SlackError("channel_not_found")
        return {"members": list(self._members[channel]), "response_metadata": {"next_cursor": ""}}

    def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if not channel:
            raise SlackError("channel_not_found")
        info = {"id": channel, "is_channel": True, "is_private": True, "is_shared": False, "is_ext_shared": False}
        info |= self._channel_info.get(channel, {})
        if info.pop("missing", False):
            raise SlackError("channel_not_found")
        return {"channel": info}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = str(args.get("trigger_id") or "")
        if not trigger:
            raise SlackError("invalid_trigger_id")
        view = json_field(args, "view", "invalid_arguments")
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("blocks"):
            raise SlackError("invalid_arguments")
        opened = {"trigger_id": trigger, "view": view, "id": f"V{len(self._views) + 1:08d}"}
        self._views.append(opened)
        return {"view": {**view, "id": opened["id"]}}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self._usergroups.get(str(args.get("usergroup", "")))
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}
