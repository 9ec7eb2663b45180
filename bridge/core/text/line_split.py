"""Cutting text and lists into the pieces LINE accepts (Slack -> LINE).

LINE counts a text's length in UTF-16 code units (:func:`utf16_len`), takes at most 5000 of
them per message, and at most 5 messages per push. A caller can rely on :func:`split_for_line`
giving back exactly the text, in chunks within the limit that never split a surrogate pair and
keep grapheme clusters whole (see :mod:`bridge.core.text.graphemes`), and on :func:`batches`
keeping the order. Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TypeVar

from bridge.core.text.graphemes import grapheme_breaks

__all__ = ["batches", "split_for_line", "utf16_len"]

T = TypeVar("T")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (how LINE counts text length).

    Characters outside the BMP (most emoji) count 2, everything else 1.
    """
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def split_for_line(text: str, *, limit: int = 5000) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 code units.

    Guarantees: ``"".join(result) == text``; every chunk is non-empty, at most
    ``limit`` units long and valid UTF-16 (a surrogate pair is never split).
    ``""`` gives ``[]``; text within the limit gives ``[text]``.

    Where to cut, in order of preference, looking only at the last ~20% of
    each window: right after a newline (after the last of a run of newlines
    where the window allows, so no chunk needlessly starts with an empty
    line), right after other whitespace (the
    whitespace stays at the end of the earlier chunk), then at the last
    grapheme-cluster boundary anywhere in the window (approximated: ZWJ
    sequences, emoji with variation selectors or skin tones, combining marks
    and flag pairs stay whole).  Only a single cluster longer than ``limit``
    is cut between code points.

    Raises ValueError when ``limit < 2`` (an astral character needs 2 units).
    """
    if limit < 2:
        raise ValueError(f"limit must be at least 2 UTF-16 code units, got {limit}")
    if not text:
        return []
    if utf16_len(text) <= limit:
        return [text]

    # units[i] = UTF-16 length of text[:i]; lets us find windows by bisection.
    units = [0]
    for ch in text:
        units.append(units[-1] + (2 if ord(ch) > 0xFFFF else 1))
    ok = grapheme_breaks(text)
    n = len(text)
    min_tail = limit - limit // 5  # the "final ~20%" of a window

    chunks: list[str] = []
    start = 0
    while units[n] - units[start] > limit:
        end = bisect_right(units, units[start] + limit) - 1  # > start as limit >= 2
        cut = _choose_cut(text, ok, units, start, end, units[start] + min_tail)
        chunks.append(text[start:cut])
        start = cut
    chunks.append(text[start:])
    return chunks


def _choose_cut(text: str, ok: list[bool], units: list[int], start: int, end: int, tail_units: int) -> int:
    """Pick the end index of the chunk starting at ``start`` (``start < cut <= end``)."""
    # Candidates in the tail of the window, nearest the end first.
    tail = [b for b in range(end, start, -1) if units[b] >= tail_units]
    # After a newline, and preferably after the last of a run, so that the next message does
    # not start with an empty line.
    for b in tail:
        if text[b - 1] == "\n" and ok[b] and (b == len(text) or text[b] != "\n"):
            return b
    for b in tail:
        if text[b - 1] == "\n" and ok[b]:
            return b
    for b in tail:
        if text[b - 1].isspace() and ok[b]:
            return b
    for b in range(end, start, -1):
        if ok[b]:
            return b
    # One cluster longer than the limit: cut between code points.
    return end


def batches(items: Sequence[T], size: int = 5) -> list[list[T]]:
    """Consecutive groups of at most ``size`` items, in order (LINE takes 5 per push).

    Only the last group may be shorter; no items gives ``[]``.
    Raises ValueError when ``size < 1``.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
