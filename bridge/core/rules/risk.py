"""Risk words in a child's message: matched after normalisation, so spelling variants agree."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

# Katakana (ァ..ヶ) written as hiragana, so one expression covers both scripts.
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
# Dropped before matching: separators, punctuation, symbols (emoji), controls and format
# characters (zero-width joiners). Letters, numbers, marks and the long-vowel mark stay.
_DROPPED_CATEGORIES = ("Z", "P", "S", "C")


def normalise(text: str) -> str:
    """The form risk expressions are matched against: NFKC (so half-width ｼﾆﾀｲ and full-width
    forms agree), katakana as hiragana, lower case, no spaces, punctuation, emoji or controls."""
    folded = unicodedata.normalize("NFKC", text).translate(_KATAKANA_TO_HIRAGANA).lower()
    return "".join(ch for ch in folded if ch == "ー" or not unicodedata.category(ch).startswith(_DROPPED_CATEGORIES))


@lru_cache(maxsize=8)
def _compiled(expressions: tuple[str, ...]) -> re.Pattern[str] | None:
    if not expressions:
        return None
    return re.compile("|".join(f"(?:{e})" for e in expressions))


def is_risky(text: str | None, expressions: Sequence[str]) -> bool:
    """True if the text matches any of the risk expressions after normalisation."""
    if not text:
        return False
    pattern = _compiled(tuple(expressions))
    return pattern is not None and pattern.search(normalise(text)) is not None
