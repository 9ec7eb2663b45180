"""Pure text helpers shared by the LINE <-> Slack relay.

Everything here is deterministic and free of I/O so it can be unit tested
exhaustively.  Two directions matter:

* LINE -> Slack: what a child sends is described in words
  (:func:`describe_line_message`); the core passes it on as the child's words,
  which the Slack adapter escapes so it cannot ping anyone or fake Slack markup.
* Slack -> LINE: a counsellor's Slack message is converted to plain text a child
  can read (:func:`slack_to_plain`) and cut into pieces LINE accepts
  (:func:`split_for_line`, :func:`batches`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import TypeVar

import emoji

__all__ = [
    "batches",
    "describe_line_message",
    "slack_to_plain",
    "split_for_line",
    "utf16_len",
]

T = TypeVar("T")

# --------------------------------------------------------------------------
# Slack -> LINE
# --------------------------------------------------------------------------

# Slack wraps all of its markup in <...>; a real "<" or ">" typed by a person
# always arrives escaped, so any raw bracket pair is a markup candidate.
_MARKUP_RE = re.compile(r"<([^<>]*)>")
_ID_RE = re.compile(r"[A-Z0-9]+")
# A URI scheme per RFC 3986 ("https:", "mailto:", "tel:", "slack:" ...).
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# Broadcast mentions mean nothing to a child and must not leak as text.
_BROADCASTS = frozenset({"here", "channel", "everyone", "group"})

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


def _emojize_slack(text: str) -> str:
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


def _unescape_slack(text: str) -> str:
    # "&amp;" last, so "&amp;lt;" becomes "&lt;" and never "<".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain_text(text: str) -> str:
    """Convert a piece of human-typed text (not a URL or id)."""
    return _emojize_slack(_unescape_slack(text))


def _strip_scheme(url: str) -> str:
    return re.sub(r"^[A-Za-z][A-Za-z0-9+.\-]*://", "", url)


def _render_link(target: str, label: str | None) -> str:
    url = _unescape_slack(target)
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("mailto", "tel"):
        # A child should see the address or number, not the URI plumbing.
        if label:
            return _plain_text(label)
        return url.split(":", 1)[1]
    if not label:
        return url
    plain_label = _plain_text(label)
    same = {url, _strip_scheme(url)}
    same |= {s.rstrip("/") for s in same}
    if plain_label in same:
        return url
    return f"{plain_label} ({url})"


def _render_markup(body: str, user_names: Mapping[str, str]) -> str | None:
    """Render the inside of one ``<...>``.

    Returns the replacement text, ``""`` for markup that is removed, or None
    when the body is not Slack markup (then it stays literal).
    """
    target, sep, label = body.partition("|")
    label_or_none = label if sep else None
    if target.startswith("@"):
        user_id = target[1:]
        if not _ID_RE.fullmatch(user_id):
            return None
        if label:
            return "@" + _plain_text(label)
        name = user_names.get(user_id)
        return f"@{name}" if name else ""
    if target.startswith("#"):
        if not _ID_RE.fullmatch(target[1:]):
            return None
        return "#" + _plain_text(label) if label else ""
    if target.startswith("!"):
        command = target[1:].split("^", 1)[0]
        if not command:
            return None
        if command in _BROADCASTS or command == "subteam":
            return ""
        # "<!date^...|Feb 18, 2014>" and other specials: the fallback text
        # is what Slack shows to clients that cannot render them.
        return _plain_text(label) if label else ""
    if _SCHEME_RE.match(target):
        return _render_link(target, label_or_none)
    return None


def slack_to_plain(text: str, *, user_names: Mapping[str, str] | None = None) -> str:
    """Convert the text of a Slack message into plain text for LINE.

    Callers can rely on:

    * Mentions: ``<@U123|name>`` -> ``@name``; ``<@U123>`` -> ``@name`` when
      ``user_names`` maps the id, else removed.  Channels: ``<#C1|general>`` ->
      ``#general``; ``<#C1>`` removed.  ``<!here>``, ``<!channel>``,
      ``<!everyone>`` and ``<!subteam^...>`` are removed; other specials such as
      ``<!date^...|fallback>`` become their fallback text.  When removed markup
      sits between two spaces (or at the start/end of the text or a line),
      the extra space is dropped so no double space is left behind.
    * Links: ``<url|label>`` -> ``label (url)``, or just ``url`` when the label
      is the URL (with or without its scheme or trailing slash); ``<url>`` ->
      ``url``; ``mailto:``/``tel:`` links show the label or the bare
      address/number.
    * ``&amp;``, ``&lt;``, ``&gt;`` are unescaped after markup is parsed, so an
      escaped ``&lt;@U1&gt;`` typed by a person stays the literal ``<@U1>``
      and ``&amp;lt;`` becomes ``&lt;``.
    * Known ``:emoji:`` codes (Slack names, including ``::skin-tone-N:``) become
      Unicode; unknown codes such as custom workspace emoji and things like
      ``10:30:45`` stay as typed.  URLs are never emoji-converted.
    * mrkdwn formatting marks (``*bold*``, ``_italic_``, ``~strike~``, backticks
      and code blocks) are left exactly as typed.
    * Unmatched or non-markup brackets stay literal.  Never raises.
    """
    names: Mapping[str, str] = user_names if user_names is not None else {}
    out: list[str] = []
    # Set when markup was removed: the next literal may need its leading
    # space dropped so "hi <@U1> there" becomes "hi there".
    removed_pending = False
    pos = 0

    def emit_literal(chunk: str) -> None:
        nonlocal removed_pending
        if not chunk:
            return
        if removed_pending:
            prev = out[-1] if out else ""
            before_is_gap = prev == "" or prev[-1] in " \n"
            if chunk[0] == " " and before_is_gap:
                chunk = chunk[1:]
            elif chunk[0] == "\n" and prev.endswith(" "):
                out[-1] = prev[:-1]
            removed_pending = False
        if chunk:
            out.append(chunk)

    for m in _MARKUP_RE.finditer(text):
        emit_literal(_plain_text(text[pos : m.start()]))
        pos = m.end()
        rendered = _render_markup(m.group(1), names)
        if rendered is None:
            emit_literal(_plain_text(m.group(0)))
        elif rendered:
            emit_literal(rendered)
        else:
            removed_pending = True
    emit_literal(_plain_text(text[pos:]))
    if removed_pending and out and out[-1].endswith(" "):
        # Removed markup at the very end: drop the space that led up to it.
        out[-1] = out[-1][:-1]
    return "".join(out)


# --------------------------------------------------------------------------
# Lengths and splitting for LINE
# --------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (how LINE counts text length).

    Characters outside the BMP (most emoji) count 2, everything else 1.
    """
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


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


def _grapheme_breaks(text: str) -> list[bool]:
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
    ok = _grapheme_breaks(text)
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


# --------------------------------------------------------------------------
# Describing non-text LINE messages for Slack
# --------------------------------------------------------------------------

_MAX_STICKER_KEYWORDS = 5


def _format_duration(duration_ms: int) -> str:
    seconds = max(0, (duration_ms + 500) // 1000)  # nearest second
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


DEFAULT_MEDIA_LABELS: Mapping[str, str] = {
    "sticker": "スタンプ",
    "image": "画像",
    "video": "動画",
    "audio": "音声",
    "file": "ファイル",
    "location": "位置情報",
    "unknown": "未対応のメッセージ",
}


def describe_line_message(
    message_type: str,
    *,
    sticker_keywords: Sequence[str] = (),
    file_name: str | None = None,
    duration_ms: int | None = None,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A short Japanese description of a non-text LINE message.

    ``labels`` (the policy file's media texts) replaces the default words per type:
    keys sticker, image, video, audio, file, location, unknown.

    * ``sticker`` -> ``[スタンプ]`` or ``[スタンプ: 嬉しい, OK]`` (first 5 keywords)
    * ``image`` -> ``[画像]``
    * ``video`` / ``audio`` -> ``[動画 0:12]`` / ``[音声 0:05]`` (``m:ss``,
      ``h:mm:ss`` from an hour, rounded to the nearest second), or
      ``[動画]`` / ``[音声]`` without a duration
    * ``file`` -> ``[ファイル: name.pdf]`` or ``[ファイル]``
    * ``location`` -> ``[位置情報: title]`` or ``[位置情報]``
    * anything else -> ``[未対応のメッセージ: type]``

    Keywords, file name, title and type come from the child as they are: the
    description is the child's words (a ChildWords part), and only the Slack
    adapter's escaping makes it safe to post.
    """
    words = {**DEFAULT_MEDIA_LABELS, **(labels or {})}
    if message_type == "sticker":
        keywords = [k for k in sticker_keywords if k][:_MAX_STICKER_KEYWORDS]
        return f"[{words['sticker']}: {', '.join(keywords)}]" if keywords else f"[{words['sticker']}]"
    if message_type == "image":
        return f"[{words['image']}]"
    if message_type in ("video", "audio"):
        label = words[message_type]
        if duration_ms is None:
            return f"[{label}]"
        return f"[{label} {_format_duration(duration_ms)}]"
    if message_type == "file":
        return f"[{words['file']}: {file_name}]" if file_name else f"[{words['file']}]"
    if message_type == "location":
        return f"[{words['location']}: {title}]" if title else f"[{words['location']}]"
    return f"[{words['unknown']}: {message_type}]"
