"""Slack emoji shortcodes (``:thumbsup:``, ``:man-bowing::skin-tone-3:``) as Unicode.

A caller can rely on :func:`emojize_slack` replacing every code it knows (Slack's own names,
the emoji package's aliases, hyphenated names retried with underscores, ``flag-xx``, and a skin
tone following a base) and leaving everything else exactly as typed: custom workspace emoji,
a custom emoji with a tone, and colons that are no code at all such as ``10:30:45``. It never
raises. Pure: no I/O.
"""

from __future__ import annotations

import re

import emoji

__all__ = ["emojize_slack"]

# Slack shortcodes are lowercase; an optional skin tone follows as a second
# code (":thumbsup::skin-tone-3:").
_EMOJI_RE = re.compile(r":([a-z0-9_+\-]+):(?::skin-tone-([2-6]):)?")
_SKIN_TONES = {str(n): chr(0x1F3FB + n - 2) for n in range(2, 7)}
# Slack names that the emoji package's alias table lacks (or spells
# differently).  Hyphenated Slack names like "man-bowing" are also retried
# with underscores, and "flag-xx" is built from regional indicators.
_SLACK_ONLY_EMOJI: dict[str, str] = {
    "simple_smile": "\U0001f642",
    "slightly_smiling_face": "\U0001f642",
    "white_check_mark": "\u2705",
    "heart": "\u2764\ufe0f",
    "white_smiling_face": "\u263a\ufe0f",
    "smiling_face_with_3_hearts": "\U0001f970",
    "the_horns": "\U0001f918",
    "hand_with_index_and_middle_fingers_crossed": "\U0001f91e",
    "spock-hand": "\U0001f596",
    "face_palm": "\U0001f926",
    "zipper_mouth": "\U0001f910",
    "man-woman-boy": "\U0001f468\u200d\U0001f469\u200d\U0001f466",
    "man-woman-girl": "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "man-woman-girl-boy": "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "woman-gesturing-ok": "\U0001f646\u200d\u2640\ufe0f",
    "man-gesturing-ok": "\U0001f646\u200d\u2642\ufe0f",
    "woman-tipping-hand": "\U0001f481\u200d\u2640\ufe0f",
    "man-tipping-hand": "\U0001f481\u200d\u2642\ufe0f",
    "female-student": "\U0001f469\u200d\U0001f393",
    "male-student": "\U0001f468\u200d\U0001f393",
    "female-teacher": "\U0001f469\u200d\U0001f3eb",
    "male-teacher": "\U0001f468\u200d\U0001f3eb",
    **{f"skin-tone-{n}": mod for n, mod in _SKIN_TONES.items()},
}
_FLAG_RE = re.compile(r"flag-([a-z]{2})")


def _emoji_for(name: str) -> str | None:
    """Unicode for a Slack shortcode name, or None when it is not a known emoji."""
    if name in _SLACK_ONLY_EMOJI:
        return _SLACK_ONLY_EMOJI[name]
    flag = _FLAG_RE.fullmatch(name)
    if flag:
        return "".join(chr(0x1F1E6 + ord(c) - ord("a")) for c in flag.group(1))
    candidates = [name]
    if "-" in name:
        candidates.append(name.replace("-", "_"))
    for candidate in candidates:
        code = f":{candidate}:"
        converted = emoji.emojize(code, language="alias")
        if converted != code:
            return converted
    return None


def emojize_slack(text: str) -> str:
    """Replace known Slack ``:shortcodes:`` with Unicode, leaving the rest as typed."""
    if ":" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        m = _EMOJI_RE.search(text, pos)
        if m is None:
            break
        name, tone = m.group(1), m.group(2)
        converted = _emoji_for(name)
        if converted is not None:
            if tone is not None:
                # A modifier must follow the base directly, not a VS16.
                converted = converted.removesuffix("\ufe0f") + _SKIN_TONES[tone]
            out.append(text[pos : m.start()])
            out.append(converted)
            pos = m.end()
        elif tone is not None:
            # Custom emoji with a tone: keep the whole thing as typed.
            out.append(text[pos : m.end()])
            pos = m.end()
        else:
            # Not an emoji (e.g. ":30:" in "10:30:45"); its closing colon may
            # still open a real code, so only step past the opening colon.
            out.append(text[pos : m.start() + 1])
            pos = m.start() + 1
    out.append(text[pos:])
    return "".join(out)
