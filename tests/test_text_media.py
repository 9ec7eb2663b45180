"""Unit tests for bridge.core.text.media: non-text LINE messages described for Slack."""

from __future__ import annotations

import pytest

from bridge.core.text.media import describe_line_message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"message_type": "sticker"}, "[スタンプ]"),
        ({"message_type": "sticker", "sticker_keywords": ["嬉しい", "OK"]}, "[スタンプ: 嬉しい, OK]"),
        ({"message_type": "sticker", "sticker_keywords": ("a", "", "b")}, "[スタンプ: a, b]"),
        (
            {"message_type": "sticker", "sticker_keywords": [str(i) for i in range(9)]},
            "[スタンプ: 0, 1, 2, 3, 4]",
        ),
        ({"message_type": "sticker", "sticker_keywords": ["<!here>"]}, "[スタンプ: <!here>]"),
        ({"message_type": "image"}, "[画像]"),
        ({"message_type": "video", "duration_ms": 12000}, "[動画 0:12]"),
        ({"message_type": "video", "duration_ms": 12499}, "[動画 0:12]"),
        ({"message_type": "video", "duration_ms": 12500}, "[動画 0:13]"),
        ({"message_type": "video", "duration_ms": 125000}, "[動画 2:05]"),
        ({"message_type": "video", "duration_ms": 3_725_000}, "[動画 1:02:05]"),
        ({"message_type": "video"}, "[動画]"),
        ({"message_type": "audio", "duration_ms": 5000}, "[音声 0:05]"),
        ({"message_type": "audio", "duration_ms": 0}, "[音声 0:00]"),
        ({"message_type": "audio", "duration_ms": -10}, "[音声 0:00]"),
        ({"message_type": "audio"}, "[音声]"),
        ({"message_type": "file", "file_name": "name.pdf"}, "[ファイル: name.pdf]"),
        ({"message_type": "file", "file_name": "<@U1>&.pdf"}, "[ファイル: <@U1>&.pdf]"),
        ({"message_type": "file"}, "[ファイル]"),
        ({"message_type": "location", "title": "東京駅"}, "[位置情報: 東京駅]"),
        ({"message_type": "location", "title": "<!channel>"}, "[位置情報: <!channel>]"),
        ({"message_type": "location"}, "[位置情報]"),
        ({"message_type": "imagemap"}, "[未対応のメッセージ: imagemap]"),
        ({"message_type": "<!everyone>"}, "[未対応のメッセージ: <!everyone>]"),
    ],
)
def test_describe_line_message(kwargs: dict[str, object], expected: str) -> None:
    assert describe_line_message(**kwargs) == expected  # type: ignore[arg-type]
