"""The roster of who may use the controls: the members of the case channels and of the
supervisors' user group, as last fetched from Slack by the worker (a part of Store). Slack user
IDs only: nothing about a child."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bridge.adapters.redis.codec import as_text
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys
from bridge.core.ids import SlackUserId
from bridge.core.rules.controls import Roster

__all__ = ["RosterStore"]


class RosterStore:
    """The roster's reads and writes (a part of Store)."""

    redis: RedisClient
    keys: Keys

    async def save_roster(
        self,
        members: Iterable[str],
        group_supervisors: Iterable[str] | None,
        *,
        at: float,
        others: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Replace the roster with a fresh copy from Slack, in one step: members of
        SLACK_CHANNEL_ID, and of the pool's other channels (others, by channel). group_supervisors
        None keeps the stored list: the group could not be read."""
        pipe = self.redis.pipeline(transaction=True)
        channels = {self.keys.roster_members: members}
        channels |= {self.keys.roster_members_of(channel): their for channel, their in (others or {}).items()}
        for key, their in channels.items():
            pipe.delete(key)
            if member_list := list(their):
                pipe.sadd(key, *member_list)
        if group_supervisors is not None:
            pipe.delete(self.keys.roster_supervisors)
            if supervisor_list := list(group_supervisors):
                pipe.sadd(self.keys.roster_supervisors, *supervisor_list)
        pipe.set(self.keys.roster_at, f"{at:.3f}")
        await pipe.execute()

    async def roster(self, *, others: Sequence[str] = ()) -> Roster | None:
        """The roster, or None if it was never fetched: members of SLACK_CHANNEL_ID and of the
        pool's other channels named (others), one set each, joined here (a cluster's pipeline
        takes no SUNION)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.roster_at)
        pipe.smembers(self.keys.roster_supervisors)
        for key in (self.keys.roster_members, *(self.keys.roster_members_of(c) for c in others)):
            pipe.smembers(key)
        at, supervisors, *channels = await pipe.execute()
        if at is None:
            return None
        return Roster(
            members=frozenset(SlackUserId(as_text(m)) for members in channels for m in members),
            group_supervisors=frozenset(SlackUserId(as_text(m)) for m in supervisors),
        )
