"""Describing a non-text LINE message (sticker, image, video, ...) for the case thread.

A caller can rely on :func:`describe_line_message` giving a short bracketed description in the
policy's words (:data:`DEFAULT_MEDIA_LABELS` when none are given). Every value in it that the
child controls is passed on as it came: the description is the child's words, which the platform
adapter escapes when it posts them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_MEDIA_LABELS", "describe_line_message"]

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
