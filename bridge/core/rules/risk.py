"""Risk in a child's message: which categories of danger it shows, matched after normalisation.

The policy file names the categories (suicidal thoughts, self-harm, overdose, abuse, ...), each
with a label the supervisors see, a level and its expressions; and the calm phrases (hyperbole
such as 死ぬほど笑った, games, lyrics) that are taken out of a message before it is matched. The
expressions are compiled by the configuration layer with a linear-time engine (RE2), so no
expression can stall the router; the core only calls what it is given.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

# Katakana (ァ..ヶ) written as hiragana, so one expression covers both scripts.
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
# Dropped before matching: separators, punctuation, symbols (emoji), controls and format
# characters (zero-width joiners). Letters, numbers, marks and the long-vowel mark stay.
_DROPPED_CATEGORIES = ("Z", "P", "S", "C")
# What a calm phrase is replaced by: no expression matches across it (normalised text has no
# spaces, and an expression is written for normalised text).
_GAP = b" "


class RiskLevel(StrEnum):
    URGENT = "urgent"  # the supervisors are alerted at once, the case is marked, checklist in the thread
    WATCH = "watch"  # a note in the thread, for the counsellor only


class Matcher(Protocol):
    """A compiled expression (the configuration layer gives RE2's), matched against UTF-8:
    the message is encoded once, not once per category."""

    def search(self, text: bytes, /) -> object | None: ...

    def sub(self, replacement: bytes, text: bytes, /) -> bytes: ...


@dataclass(frozen=True)
class RiskCategory:
    key: str  # kept on the case once seen, e.g. "suicidal"
    label: str  # what supervisors and counsellors see, e.g. 自殺念慮; never the child's words
    level: RiskLevel
    expressions: tuple[str, ...]
    matcher: Matcher = field(compare=False, repr=False)


@dataclass(frozen=True)
class Safety:
    categories: tuple[RiskCategory, ...] = ()
    calm_expressions: tuple[str, ...] = ()
    calm: Matcher | None = field(default=None, compare=False, repr=False)


def normalise(text: str) -> str:
    """The form risk expressions are matched against: NFKC (so half-width ｼﾆﾀｲ and full-width
    forms agree), katakana as hiragana, lower case, no spaces, punctuation, emoji or controls."""
    folded = unicodedata.normalize("NFKC", text).translate(_KATAKANA_TO_HIRAGANA).lower()
    return "".join(ch for ch in folded if ch == "ー" or not unicodedata.category(ch).startswith(_DROPPED_CATEGORIES))


def risks_in(text: str | None, safety: Safety) -> tuple[RiskCategory, ...]:
    """The categories a message shows, in the policy's order: those that match the normalised
    text, and still match once its calm phrases are taken out. (A calm phrase only ever takes a
    match away; most messages match no category, and then the calm phrases are not looked for.)"""
    if not text or not safety.categories:
        return ()
    normalised = normalise(text).encode()
    found = tuple(c for c in safety.categories if c.matcher.search(normalised) is not None)
    if not found or safety.calm is None:
        return found
    calmed = safety.calm.sub(_GAP, normalised)
    return tuple(c for c in found if c.matcher.search(calmed) is not None)


def urgent_among(categories: tuple[RiskCategory, ...]) -> tuple[RiskCategory, ...]:
    """The categories of the urgent level, in order."""
    return tuple(c for c in categories if c.level is RiskLevel.URGENT)


def is_risky(text: str | None, safety: Safety) -> bool:
    """True if the message shows a category of the urgent level."""
    return bool(urgent_among(risks_in(text, safety)))


def labels(categories: tuple[RiskCategory, ...]) -> str:
    """The categories as supervisors read them: 自殺念慮、過量服薬."""
    return "、".join(c.label for c in categories)
