"""The deliverers' posts into Slack: each at most once, and a child's waiting messages together.

Before a delivery is posted again (its earlier attempt went unanswered), the earlier post is
looked for by its metadata, so a post that landed before its answer was lost is not posted twice.

A child's messages waiting in one case's lane go as one post when the lane had to wait (for its
channel's bucket, or for Slack), instead of one post each under Slack's limit of about one post a
second per channel. Only the child's own words are joined: the messages right behind the head,
up to the first item that is not the child's words into the thread (a bridge note, a root update,
a reaction...), which goes after them on its own. Each message keeps its label and the time the
bridge received it, and its words stay plain text. The post's metadata names every delivery it
carries, so a retry finds it by any of them and completes exactly what it carried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.adapters.redis.codec import Claim, decode_item
from bridge.adapters.redis.store import Store
from bridge.adapters.slack.client import SlackClient
from bridge.adapters.slack.names import CASE_EVENT_TYPE, DELIVERY_EVENT_TYPE
from bridge.adapters.slack.render import escape, render, words_of
from bridge.adapters.slack.views import SECTION_CHARS, child_blocks, children_blocks, root_blocks_of
from bridge.core.clock import local
from bridge.core.deliveries import ChannelPost, Delivery, Ephemeral, PostRole, RootPost, ThreadPost, from_payload
from bridge.core.parts import Text
from bridge.core.policy import Policy
from bridge.core.retry import DELIVERED, Outcome, OutcomeStatus

log = logging.getLogger("bridge.worker")

# A head enqueued at least this long ago may have company behind it: only then is it looked for.
LOOK_BEHIND_MS = 200
# What one post carries at most: messages, characters of words (Slack cuts a message's text at
# 40,000), and blocks (Slack's limit is 50).
MAX_MESSAGES = 10
MAX_WORDS = 12_000
MAX_BLOCKS = 50
# The metadata field listing every delivery a post carries (when it carries more than one).
CARRIES = "carries"


@dataclass(frozen=True)
class Waiting:
    """A child's message in a case's lane: its delivery id, its words, when it was enqueued (ms)."""

    item_id: str
    words: str
    received_ms: int


def joins(delivery: Delivery) -> bool:
    """Whether a delivery is the child's words into its case's own thread: what a group is made of."""
    return isinstance(delivery, ThreadPost) and delivery.role is PostRole.CHILD and delivery.thread_ts is None


def _blocks(words: str) -> int:
    return 1 + max(1, -(-len(words) // SECTION_CHARS))


def group_behind(head: Waiting, behind: Sequence[str]) -> list[Waiting]:
    """The head and the child's messages right behind it (encoded lane items, in order) that one
    post can carry: up to the first item that is not the child's words into the thread, or the
    limits."""
    group = [head]
    words, blocks = len(head.words), _blocks(head.words)
    for raw in behind:
        try:
            item_id, payload, received_ms = decode_item(raw)
            delivery = from_payload(payload)
        except (TypeError, ValueError, KeyError):
            break
        if not joins(delivery):
            break
        assert isinstance(delivery, ThreadPost)
        text = words_of(delivery.text)
        words, blocks = words + len(text), blocks + _blocks(text)
        if len(group) >= MAX_MESSAGES or words > MAX_WORDS or blocks > MAX_BLOCKS:
            break
        group.append(Waiting(item_id, text, received_ms))
    return group


class SlackPosts:
    """The posting half of the deliverers (mixed into Deliverers, which sets these)."""

    policy: Policy
    store: Store
    slack: SlackClient
    supervisor_channel: str

    async def post_children(self, claim: Claim, delivery: ThreadPost, thread_ts: str) -> tuple[Outcome, list[str]]:
        """Post the child's words into the case's thread, with the child's messages waiting
        behind them when the lane waited. Returns the outcome and the ids of the items behind
        the head that the post carried (completed with it)."""
        looked, earlier = await self._posted_before(claim, thread_ts=thread_ts, channel=claim.channel)
        if not looked:
            return Outcome(OutcomeStatus.RETRY, "could not check for an earlier post"), []
        if earlier is not None:
            carried = [str(i) for i in earlier.get(CARRIES) or []]
            return DELIVERED, carried[carried.index(claim.item_id) + 1 :] if claim.item_id in carried else []
        group = [Waiting(claim.item_id, words_of(delivery.text), claim.enqueued_ms)]
        if claim.pace is not None and time.time() * 1000 - claim.enqueued_ms >= LOOK_BEHIND_MS:
            group = group_behind(group[0], await self.store.waiting_behind(claim.lane, MAX_MESSAGES - 1))
        payload: dict[str, Any] = {"delivery": claim.item_id, "case": delivery.case}
        if len(group) == 1:
            text, blocks = self.mrkdwn(delivery.text), child_blocks(self.policy, group[0].words)
        else:
            payload[CARRIES] = [w.item_id for w in group]
            text = "\n".join(escape(w.words) for w in group)
            blocks = children_blocks(self.policy, [(w.words, self._received(w.received_ms)) for w in group])
        outcome, _ = await self.slack.post(
            text=text,
            thread_ts=thread_ts,
            event_type=DELIVERY_EVENT_TYPE,
            payload=payload,
            blocks=blocks,
            channel=claim.channel,
        )
        if outcome.delivered and len(group) > 1:
            log.info("posted together item=%s case=%d messages=%d", claim.item_id, delivery.case, len(group))
        return outcome, [w.item_id for w in group[1:]] if outcome.delivered else []

    def _received(self, at_ms: int) -> str:
        return local(at_ms / 1000, self.policy).strftime("%H:%M:%S")

    async def tell(self, delivery: Ephemeral, claim: Claim) -> Outcome:
        """An ephemeral message: in the case's thread (in its channel), or in the channel."""
        thread_ts, channel = (claim.thread_ts, claim.channel) if delivery.case is not None else (None, delivery.channel)
        text = self.mrkdwn(delivery.text)
        outcome = await self.slack.post_ephemeral(user=delivery.user, thread_ts=thread_ts, text=text, channel=channel)
        if outcome.failed and "user_not_in_channel" in outcome.reason and delivery.direct_if_outside:
            outcome = await self.post_once(claim, text=text, thread_ts=None, case=None, channel=delivery.user)
        return outcome

    async def post_root(self, root: RootPost, claim: Claim) -> Outcome:
        """Post a new case's root message (unless an earlier attempt did) and record its thread:
        in the pool's channel the case opened in, as the root says (none without a pool)."""
        channel = root.channel
        ts = None
        if claim.attempts > 1:
            # An earlier attempt may have landed before the worker lost track of it.
            looked, ts = await self.slack.find_posted(
                thread_ts=None,
                oldest=root.opened_at - 60,
                event_type=CASE_EVENT_TYPE,
                key="case",
                value=root.case,
                channel=channel,
            )
            if not looked:
                return Outcome(OutcomeStatus.RETRY, "could not check for an earlier root")
        outcome = DELIVERED
        if ts is None:
            text = self.mrkdwn(root.text)
            outcome, ts = await self.slack.post(
                text=text,
                thread_ts=None,
                event_type=CASE_EVENT_TYPE,
                payload={"case": root.case},
                blocks=root_blocks_of(self.policy, root.case, text, root.buttons),
                channel=channel,
            )
        if ts is not None:
            await self.store.record_thread(root.case, claim.lane, ts, channel)
            log.info("case thread opened case=%d", root.case)
        return outcome

    async def post_to_channel(self, post: ChannelPost, claim: Claim) -> Outcome:
        channel = self.supervisor_channel if post.target == "supervisors" else None
        return await self.post_once(claim, text=self.mrkdwn(post.text), thread_ts=None, case=None, channel=channel)

    async def post_once(
        self,
        claim: Claim,
        *,
        text: str,
        thread_ts: str | None,
        case: int | None,
        channel: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Post for this delivery, unless an earlier attempt already did (found by metadata)."""
        looked, earlier = await self._posted_before(claim, thread_ts=thread_ts, channel=channel)
        if not looked:
            return Outcome(OutcomeStatus.RETRY, "could not check for an earlier post")
        if earlier is not None:
            return DELIVERED
        payload: dict[str, Any] = {"delivery": claim.item_id}
        if case is not None:
            payload["case"] = case
        outcome, _ = await self.slack.post(
            text=text,
            thread_ts=thread_ts,
            event_type=DELIVERY_EVENT_TYPE,
            payload=payload,
            channel=channel,
            blocks=blocks,
        )
        return outcome

    async def _posted_before(
        self, claim: Claim, *, thread_ts: str | None, channel: str | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """Whether Slack could be asked (False: the caller must not post again yet), and the
        metadata payload of a post an earlier attempt of this delivery made, alone or carried
        with others (None: none found, or this is the first attempt, which asks nothing)."""
        if claim.attempts <= 1:
            return True, None
        # An earlier attempt may have landed before the worker lost track of it.
        looked, found = await self.slack.find_metadata(
            thread_ts=thread_ts,
            oldest=claim.enqueued_ms / 1000 - 60,
            event_type=DELIVERY_EVENT_TYPE,
            key="delivery",
            value=claim.item_id,
            channel=channel,
            among=CARRIES,
        )
        return looked, found[1] if found is not None else None

    def mrkdwn(self, text: Text) -> str:
        """A text as Slack shows it; its links lead to threads of the case channel (or of the
        pool's channel a link names)."""
        return render(text, channel=self.slack.channel)
