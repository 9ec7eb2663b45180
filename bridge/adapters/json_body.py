"""A webhook body's JSON, read within limits. Both webhooks read their bodies with it.

A valid signature says who sent a body, not that it is sane. Python's json module raises
RecursionError on deep nesting, ValueError on an integer of more than 4,300 digits (and converts a
long one in quadratic time), takes NaN and Infinity, and decodes a lone UTF-16 surrogate escape
("\\ud800") into a str that no UTF-8 encoder takes. So before parsing, the body's structure (what
is outside its strings) is checked for nesting and long numbers, with whole-buffer byte operations
and one count over the brackets; after, every lone surrogate in a key or value becomes U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# Arrays and objects nested in each other. LINE's events nest about 5 deep and Slack's richest
# payloads (rich text blocks, view states) under 15; Python's parser itself fails near 1,000.
MAX_DEPTH = 64
# Digits in a row outside strings (an integer, or a fraction's or exponent's digits). LINE's
# timestamps have 13; every id that is longer comes as a string.
MAX_NUMBER_DIGITS = 64


class JsonBodyError(ValueError):
    """The body is refused; the message says why without quoting it, safe to log and return."""


# How deep each bracket takes the structure: +1 for [ and {, -1 for ] and } (a signed byte), every
# other byte deleted. How deep, not which kind: a mismatched pair is the parser's to refuse.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Every digit becomes 0 and every other byte a space, so a long number is a long run of 0s.
_DIGITS = bytes(ord("0") if chr(b) in "0123456789" else ord(" ") for b in range(256))
_LONG_NUMBER = b"0" * (MAX_NUMBER_DIGITS + 1)
# Where a lone surrogate may come from: an escape of one (strict UTF-8 has none encoded).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(body: bytes) -> Any:
    """The JSON document in body (UTF-8). Raises JsonBodyError for a body that is not JSON, nests
    deeper than MAX_DEPTH, has a number of more than MAX_NUMBER_DIGITS digits or one out of a
    float's range, or uses NaN or Infinity. Lone surrogates come back as U+FFFD."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonBodyError("body is not UTF-8") from None
    _check_structure(body)
    try:
        document = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonBodyError:
        raise
    except (ValueError, RecursionError):  # RecursionError only if the check above has a gap
        raise JsonBodyError("body is not valid JSON") from None
    return without_lone_surrogates(document) if _SURROGATE_ESCAPE.search(body) else document


def _check_structure(body: bytes) -> None:
    """Refuse a body whose structure nests too deeply or has too long a number. Bytes are handled
    by whole-buffer operations (replace, split, translate); only the brackets are counted one by
    one. Up to where a parser would refuse the body, what this takes for strings is what it would."""
    # Escapes first: what is left of a string is its text between two quotes, no quote in it.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[0::2])
    if _LONG_NUMBER in outside.translate(_DIGITS):
        raise JsonBodyError(f"body has a number of more than {MAX_NUMBER_DIGITS} digits")
    if outside.count(b"[") + outside.count(b"{") <= MAX_DEPTH:
        return  # too few to nest too deeply, whatever their order
    steps = memoryview(outside.translate(_STEPS, _NOT_A_BRACKET)).cast("b")
    if max(accumulate(steps)) > MAX_DEPTH:
        raise JsonBodyError(f"body nests more than {MAX_DEPTH} levels deep")


def _no_constant(name: str) -> Any:
    raise JsonBodyError(f"body uses {name}, which is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError("body has a number out of range")
    return value


def without_lone_surrogates(value: Any) -> Any:
    """value with every lone UTF-16 surrogate in its strings (keys too) replaced by U+FFFD: no
    character on its own, and no UTF-8 encoder takes it. Nesting is bounded by loads."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(key): without_lone_surrogates(item) for key, item in value.items()}
    return value
