"""Where text may be cut without breaking what a reader sees as one character.

A caller can rely on :func:`grapheme_breaks` never allowing a cut inside a ZWJ sequence, before
a variation selector, skin tone, tag or combining mark, inside a regional-indicator (flag) pair,
or inside CRLF. It approximates the grapheme clusters of UAX #29; it does not implement every
rule. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

__all__ = ["grapheme_breaks"]

_ZWJ = "\u200d"


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _extends(ch: str) -> bool:
    """True when ``ch`` attaches to the character before it (approximately)."""
    cp = ord(ch)
    if ch == _ZWJ or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return True  # joiner and variation selectors
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
        return True  # skin tone modifiers and tag sequences (subdivision flags)
    return unicodedata.combining(ch) != 0 or unicodedata.category(ch) in ("Mn", "Me", "Mc")


def grapheme_breaks(text: str) -> list[bool]:
    """``ok[i]`` is True when breaking between ``text[i-1]`` and ``text[i]`` is fine.

    A simple approximation of UAX #29: no break around ZWJ, before extending
    characters, inside a regional-indicator pair, or inside CRLF.
    """
    n = len(text)
    ok = [True] * (n + 1)
    ri_run = 0  # regional indicators seen in a row, ending at text[i-1]
    for i in range(1, n):
        prev, cur = text[i - 1], text[i]
        ri_run = ri_run + 1 if _is_regional_indicator(prev) else 0
        if (
            prev == _ZWJ
            or _extends(cur)
            or (prev == "\r" and cur == "\n")
            or (ri_run % 2 == 1 and _is_regional_indicator(cur))
        ):
            ok[i] = False
    return ok
