"""Slack markup -> plain text a child can read on LINE (Slack -> LINE).

A counsellor's Slack message carries markup a child must not see: mentions, channel links,
broadcasts, links with labels, entities and emoji shortcodes. :func:`slack_to_plain` turns it
into plain text; its docstring lists every rule a caller can rely on. It never raises. Pure: no
I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bridge.adapters.slack.shortcodes import emojize_slack

__all__ = ["slack_to_plain"]

# Slack wraps all of its markup in <...>; a real "<" or ">" typed by a person
# always arrives escaped, so any raw bracket pair is a markup candidate.
_MARKUP_RE = re.compile(r"<([^<>]*)>")
_ID_RE = re.compile(r"[A-Z0-9]+")
# A URI scheme per RFC 3986 ("https:", "mailto:", "tel:", "slack:" ...).
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# Broadcast mentions mean nothing to a child and must not leak as text.
_BROADCASTS = frozenset({"here", "channel", "everyone", "group"})


def _unescape_slack(text: str) -> str:
    # "&amp;" last, so "&amp;lt;" becomes "&lt;" and never "<".
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain_text(text: str) -> str:
    """Convert a piece of human-typed text (not a URL or id)."""
    return emojize_slack(_unescape_slack(text))


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
