"""Which markers reached a fake API, and when: read from the fake's recorded requests."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

from bridge.fakes.server import FakeServer

from .common import MARKER_RE, Stop, wait_until


def first_seen(
    requests: Iterable[Any], texts_of: Callable[[Any], list[str]]
) -> tuple[dict[str, float], collections.Counter[str]]:
    """marker -> earliest `at` among requests answered 200, and how often each marker appeared."""
    at: dict[str, float] = {}
    counts: collections.Counter[str] = collections.Counter()
    for r in requests:
        if r.status != 200:
            continue
        for text in texts_of(r):
            for m in MARKER_RE.findall(text):
                counts[m] += 1
                if m not in at or r.at < at[m]:
                    at[m] = r.at
    return at, counts


class Seen:
    """The earliest time each marker reached ``path`` of a fake (answered 200), read
    incrementally: update() looks only at requests recorded since the last call (and at any that
    were still being answered then), so it stays cheap however many requests a run makes."""

    def __init__(
        self,
        fake: FakeServer,
        path: str,
        texts_of: Callable[[Any], list[str]],
        *,
        prefix: str = "",
        from_now: bool = False,
        took_effect: bool = False,
    ) -> None:
        """prefix: only markers starting with it; from_now: only requests recorded from now on;
        took_effect: requests that took effect (handled_status 200) rather than those answered
        200, which differ when a failure is injected after handling (the chaos run)."""
        self.fake = fake
        self.took_effect = took_effect
        self.path = path
        self.texts_of = texts_of
        self.prefix = prefix
        self.at: dict[str, float] = {}
        self._next = len(fake.requests) if from_now else 0  # requests before this are final and read

    def update(self) -> dict[str, float]:
        requests = self.fake.requests
        settled = True
        for index in range(self._next, len(requests)):
            r = requests[index]
            if r.path != self.path:
                if settled:
                    self._next = index + 1
                continue
            if r.status == 0:  # still being answered: read it again next time
                settled = False
                continue
            if settled:
                self._next = index + 1
            if (r.handled_status if self.took_effect else r.status) != 200:
                continue
            for text in self.texts_of(r):
                for m in MARKER_RE.findall(text):
                    if not m.startswith(self.prefix):
                        continue
                    if m not in self.at or r.at < self.at[m]:
                        self.at[m] = r.at
        return self.at

    def has_all(self, marks: Iterable[str]) -> bool:
        at = self.update()
        return all(m in at for m in marks)

    def wait_all(self, marks: Iterable[str], timeout: float, what: str, interval: float = 0.05) -> bool:
        """Wait until every marker arrived; False (not raising) when the time ran out."""
        wanted = list(marks)
        try:
            wait_until(lambda: self.has_all(wanted), timeout=timeout, what=what, interval=interval)
        except Stop:
            return False
        return True

    def count_by(self, marks: Iterable[str], until: float) -> int:
        """How many of these markers had arrived by the wall-clock time ``until``."""
        at = self.update()
        return sum(1 for m in marks if m in at and at[m] <= until)
