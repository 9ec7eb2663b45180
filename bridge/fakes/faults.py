"""What a fake server does instead of (or after) answering a request normally: the scripted
failures and delays of ``fail_next`` and ``delay_next``, and failures drawn at random.

Random failures come from a generator seeded by the caller, and every request draws the same
numbers whether it fails or not, so the same seed and the same sequence of requests give the
same failures (a chaos run can be repeated).
"""

from __future__ import annotations

import fnmatch
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "Delay", "Failure", "JsonBody", "RandomFailures", "Script", "path_matches"]

JsonBody = bytes | Mapping[str, Any] | None


@dataclass(frozen=True)
class Failure:
    """An error answer. after_handling: the request is first handled normally (the fake's state
    changes, as when a gateway gives up after the backend acted) and the caller gets the error."""

    status: int
    headers: dict[str, str]
    body: JsonBody
    delay: float
    after_handling: bool = False


@dataclass(frozen=True)
class Delay:
    seconds: float


Action = Failure | Delay


class RandomFailures:
    """Fail each request with probability rate, with one of statuses; of the failures, the share
    after_handling is answered after the request took effect."""

    def __init__(self, rate: float, statuses: Sequence[int], *, seed: int, after_handling: float = 0.0) -> None:
        if not 0.0 <= rate <= 1.0 or not 0.0 <= after_handling <= 1.0:
            raise ValueError("rate and after_handling are shares between 0 and 1")
        if not statuses or any(not 400 <= s <= 599 for s in statuses):
            raise ValueError("statuses must be HTTP error statuses (400-599)")
        self.rate = rate
        self.statuses = tuple(statuses)
        self.after_handling = after_handling
        self._rng = random.Random(seed)

    def draw(self) -> Failure | None:
        """The failure for the next request, or None to answer it normally."""
        fails, which, after = self._rng.random(), self._rng.random(), self._rng.random()
        if fails >= self.rate:
            return None
        status = self.statuses[min(len(self.statuses) - 1, int(which * len(self.statuses)))]
        return Failure(status, {}, None, 0.0, after_handling=after < self.after_handling)


class Script:
    """What the next requests to each path get instead of a plain answer: the scripted actions
    first (a FIFO per path or pattern), then the random failures. Not thread-safe: the fake
    calls it under its lock."""

    def __init__(self) -> None:
        self._actions: dict[str, deque[Action]] = {}
        self._random: dict[str, RandomFailures] = {}

    def add(self, path: str, action: Action, times: int) -> None:
        self._actions.setdefault(path, deque()).extend([action] * times)

    def set_random(self, path: str, failures: RandomFailures | None) -> None:
        if failures is None:
            self._random.pop(path, None)
        else:
            self._random[path] = failures

    def clear(self) -> None:
        self._actions.clear()
        self._random.clear()

    def next_for(self, path: str) -> Action | None:
        exact = self._actions.get(path)
        if exact:
            return exact.popleft()
        for pattern, queue in self._actions.items():
            if queue and pattern != path and path_matches(pattern, path):
                return queue.popleft()
        for pattern, failures in self._random.items():
            if path_matches(pattern, path):
                return failures.draw()
        return None


def path_matches(pattern: str, path: str) -> bool:
    """The path itself, or an fnmatch pattern (``/v2/bot/profile/*``) it matches."""
    if pattern == path:
        return True
    return any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(path, pattern)
