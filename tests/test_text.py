"""Unit tests for bridge.core.text (pure text helpers)."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from bridge.core.text import (
    batches,
    describe_line_message,
    slack_to_plain,
    split_for_line,
    utf16_len,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, 8 UTF-16 units
THUMBS_MEDIUM_LIGHT = "\U0001f44d\U0001f3fc"  # 👍🏼
FLAG_JP = "\U0001f1ef\U0001f1f5"  # 🇯🇵


def assert_valid_chunks(text: str, chunks: list[str], limit: int) -> None:
    assert "".join(chunks) == text
    for chunk in chunks:
        assert chunk, "empty chunk"
        assert utf16_len(chunk) <= limit
        # Strict encoding fails on a lone surrogate.
        chunk.encode("utf-16-le", "strict")


# ---------------------------------------------------------------------------
# slack_to_plain: markup
# ---------------------------------------------------------------------------

NAMES = {"U123": "佐藤", "W456": "suzuki"}


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        # user mentions
        ("<@U123> こんにちは", "@佐藤 こんにちは"),
        ("<@W456>", "@suzuki"),
        ("hi <@U999> there", "hi there"),
        ("<@U999> hi", "hi"),
        ("hi <@U999>", "hi"),
        ("hi <@U999>\nthere", "hi\nthere"),
        ("hi <@U999>there", "hi there"),  # the space before removed markup stays when none follows it
        ("FAX<@U999> 送ってね", "FAX 送ってね"),  # and the space after it, when none precedes it
        ("a <@U999> <@U998> b", "a b"),
        ("<@U999|taro> hi", "@taro hi"),
        ("<@U123|label> hi", "@label hi"),
        # channels
        ("see <#C123|general>", "see #general"),
        ("see <#C123> now", "see now"),
        # special mentions
        ("<!here> みんな", "みんな"),
        ("<!channel> みんな", "みんな"),
        ("<!everyone> みんな", "みんな"),
        ("<!here|@here> みんな", "みんな"),
        ("<!channel|channel> x", "x"),
        ("hi <!subteam^S123|@group> ok", "hi ok"),
        ("<!subteam^S123>", ""),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("会議は <!date^1392734382^{date_short}> です", "会議は です"),  # no fallback text: removed
        (
            "on <!date^1392734382^{date_short} at {time}^https://x.y|Feb 18, 2014 6:39 AM PST>.",
            "on Feb 18, 2014 6:39 AM PST.",
        ),
        # links
        ("<https://x.y|label>", "label (https://x.y)"),
        ("<https://x.y|https://x.y>", "https://x.y"),
        ("<https://x.y|x.y>", "https://x.y"),
        ("<http://example.com/|example.com>", "http://example.com/"),
        ("<http://example.org/|example.org/>", "http://example.org/"),  # Slack's own label for a typed link
        ("<https://x.y>", "https://x.y"),
        ("go <https://x.y/a?b=1&amp;c=2> now", "go https://x.y/a?b=1&c=2 now"),
        ("<https://x.y|A &amp; B>", "A & B (https://x.y)"),
        ("<https://x.y/:smile:/|site>", "site (https://x.y/:smile:/)"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("<mailto:a@b.c>", "a@b.c"),
        ("<mailto:a@b.c|メール>", "メール"),
        ("<tel:0120-000-000|電話する>", "電話する"),
        ("<tel:0120-000-000>", "0120-000-000"),
        # not markup / unmatched: stays literal
        ("a < b > c", "a < b > c"),
        ("<", "<"),
        (">", ">"),
        ("|", "|"),
        ("<<@U123>", "<@佐藤"),
        ("<@U123>>", "@佐藤>"),
        ("<>", "<>"),
        ("<|>", "<|>"),
        ("<@lower>", "<@lower>"),
        ("<#>", "<#>"),
        ("<!>", "<!>"),
        ("<no scheme here|x>", "<no scheme here|x>"),
        ("", ""),
    ],
)
def test_slack_to_plain_markup(slack: str, plain: str) -> None:
    assert slack_to_plain(slack, user_names=NAMES) == plain


def test_slack_to_plain_without_user_names_removes_mentions() -> None:
    assert slack_to_plain("<@U123> こんにちは") == "こんにちは"
    assert slack_to_plain("<@U123|佐藤> こんにちは") == "@佐藤 こんにちは"


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("a &amp; b", "a & b"),
        ("&lt;b&gt;", "<b>"),
        ("&amp;lt;", "&lt;"),  # "&amp;" is unescaped last
        ("&amp;amp;", "&amp;"),
        ("&amp;gt;", "&gt;"),
        # escaped markup typed by a person stays literal, not re-parsed
        ("&lt;@U123&gt;", "<@U123>"),
        ("&lt;!channel&gt;", "<!channel>"),
        ("&lt;https://x.y|z&gt;", "<https://x.y|z>"),
        ("&quot;&#39;", "&quot;&#39;"),  # only Slack's three entities
    ],
)
def test_slack_to_plain_entities(slack: str, plain: str) -> None:
    assert slack_to_plain(slack, user_names=NAMES) == plain


@pytest.mark.parametrize(
    "formatted",
    ["*太字*", "_italic_", "~strike~", "`code`", "```\nblock\n```", "> quote", "• bullet", "1. item"],
)
def test_slack_to_plain_keeps_formatting_marks(formatted: str) -> None:
    assert slack_to_plain(formatted) == formatted


# ---------------------------------------------------------------------------
# slack_to_plain: emoji
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "char"),
    [
        (":thumbsup:", "\U0001f44d"),
        (":+1:", "\U0001f44d"),
        (":-1:", "\U0001f44e"),
        (":smile:", "\U0001f604"),
        (":slightly_smiling_face:", "\U0001f642"),
        (":simple_smile:", "\U0001f642"),
        (":white_check_mark:", "\u2705"),
        (":heart:", "\u2764\ufe0f"),
        (":pray:", "\U0001f64f"),
        (":bow:", "\U0001f647"),
        (":sweat_smile:", "\U0001f605"),
        (":cry:", "\U0001f622"),
        (":sob:", "\U0001f62d"),
        (":ok_hand:", "\U0001f44c"),
        (":tada:", "\U0001f389"),
        (":sunny:", "\u2600\ufe0f"),
        (":star:", "\u2b50"),
        (":relieved:", "\U0001f60c"),
        (":blush:", "\U0001f60a"),
        (":smiling_face_with_3_hearts:", "\U0001f970"),
        (":white_smiling_face:", "\u263a\ufe0f"),
        (":100:", "\U0001f4af"),
        (":flag-jp:", FLAG_JP),
        (":jp:", FLAG_JP),
        (":man-bowing:", "\U0001f647\u200d\u2642\ufe0f"),
        (":man-woman-girl-boy:", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
    ],
)
def test_slack_to_plain_emoji(code: str, char: str) -> None:
    assert slack_to_plain(code) == char
    assert slack_to_plain(f"ありがとう{code}です") == f"ありがとう{char}です"


@pytest.mark.parametrize(
    ("code", "char"),
    [
        (":thumbsup::skin-tone-2:", "\U0001f44d\U0001f3fb"),
        (":thumbsup::skin-tone-3:", THUMBS_MEDIUM_LIGHT),
        (":+1::skin-tone-4:", "\U0001f44d\U0001f3fd"),
        (":wave::skin-tone-5:", "\U0001f44b\U0001f3fe"),
        (":pray::skin-tone-6:", "\U0001f64f\U0001f3ff"),
        # the modifier replaces VS16 rather than following it
        (":v::skin-tone-3:", "\u270c\U0001f3fc"),
    ],
)
def test_slack_to_plain_skin_tones(code: str, char: str) -> None:
    assert slack_to_plain(code) == char


@pytest.mark.parametrize(
    "text",
    [
        ":our_logo:",
        ":our_logo::skin-tone-3:",
        "10:30:45",
        "10:30",
        "12:00:00 に会いましょう",
        "ratio 3:2:1",
        "::",
        ":::",
        ": smile :",
        ":Smile:",
        "http://example.com:8080/",
        "a:b",
    ],
)
def test_slack_to_plain_leaves_non_emoji_colons(text: str) -> None:
    assert slack_to_plain(text) == text


def test_slack_to_plain_unknown_code_does_not_swallow_next_code() -> None:
    assert slack_to_plain("x:zz:smile:") == "x:zz\U0001f604"
    assert slack_to_plain("10:30:smile:") == "10:30\U0001f604"
    assert slack_to_plain(":our_logo::tada:") == ":our_logo:\U0001f389"


def test_slack_to_plain_mixed_message() -> None:
    slack = "<@U123> さん、<!here> 連絡ありがとう :pray: 詳しくは <https://example.org/faq|FAQ> &amp; 10:30 に。"
    # Only a space between two gaps is collapsed; the one after "、" stays.
    assert slack_to_plain(slack, user_names=NAMES) == (
        "@佐藤 さん、 連絡ありがとう \U0001f64f 詳しくは FAQ (https://example.org/faq) & 10:30 に。"
    )


def test_slack_to_plain_fuzz_never_raises() -> None:
    rng = random.Random(20240601)
    alphabet = [
        *"<>|!@#^:&;-_+/ \nabcUCW123ltgamp",
        "&amp;",
        "&lt;",
        "&gt;",
        "😀",
        "あ",
        "https://",
        "mailto:",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        result = slack_to_plain(text, user_names=NAMES)
        assert isinstance(result, str)


# ---------------------------------------------------------------------------
# utf16_len
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("abc", 3),
        ("あいう", 3),
        ("😀", 2),
        ("a😀b", 4),
        (FAMILY, 8),
        (FLAG_JP, 4),
        ("\u2764\ufe0f", 2),
        ("\U0010ffff", 2),
        ("\uffff", 1),
    ],
)
def test_utf16_len(text: str, length: int) -> None:
    assert utf16_len(text) == length
    assert utf16_len(text) == len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------
# split_for_line
# ---------------------------------------------------------------------------


def test_split_empty_and_short() -> None:
    assert split_for_line("") == []
    assert split_for_line("hello") == ["hello"]
    exact = "あ" * 5000
    assert split_for_line(exact) == [exact]
    assert split_for_line("😀" * 2500) == ["😀" * 2500]


@pytest.mark.parametrize("limit", [-1, 0, 1])
def test_split_rejects_tiny_limit(limit: int) -> None:
    with pytest.raises(ValueError):
        split_for_line("abc", limit=limit)


def test_split_6000_char_reply_with_emoji_on_surrogate_boundary() -> None:
    # 2999 + 2*1000 = 4999 units before the last 😀, so the 5000-unit boundary
    # falls between its two surrogates.
    text = "あ" * 2999 + "😀" * 1001 + "い" * 2000
    assert len(text) == 6000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert len(chunks) == 2
    assert utf16_len(chunks[0]) == 4999
    assert chunks[0].endswith("😀")
    assert chunks[1].startswith("😀")


def test_split_single_emoji_straddling_boundary() -> None:
    text = "あ" * 4999 + "😀" + "い" * 1000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks[0] == "あ" * 4999
    assert chunks[1] == "😀" + "い" * 1000


def test_split_keeps_zwj_family_whole() -> None:
    text = "a" * 4995 + FAMILY + "b" * 100  # family spans units 4995..5002
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks[0] == "a" * 4995
    assert chunks[1].startswith(FAMILY)


@pytest.mark.parametrize(
    ("prefix_len", "cluster"),
    [
        (4998, THUMBS_MEDIUM_LIGHT),  # base + skin tone modifier
        (4999, "\u2764\ufe0f"),  # base + VS16
        (4999, "\u5f41\ufe0e"),  # base + VS15
        (4999, "e\u0301"),  # combining acute
        (4999, "か\u3099"),  # combining dakuten
        (4997, FLAG_JP),  # regional indicator pair
        (4999, "1\ufe0f\u20e3"),  # keycap
        (4998, "\U0001f469\u200d\U0001f4bb"),  # woman technologist
        (4999, "\r\n"),
    ],
)
def test_split_keeps_grapheme_clusters_whole(prefix_len: int, cluster: str) -> None:
    text = "x" * prefix_len + cluster + "y" * 50
    assert utf16_len("x" * prefix_len + cluster) > 5000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks[0] == "x" * prefix_len
    assert chunks[1].startswith(cluster)


def test_split_flag_pairs_are_not_mispaired() -> None:
    # The first flag fits exactly; the cut must fall between the two flags,
    # not inside either pair.
    text = "x" * 4996 + FLAG_JP + FLAG_JP + "y"
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks == ["x" * 4996 + FLAG_JP, FLAG_JP + "y"]


def test_split_prefers_newline_in_tail() -> None:
    text = "a" * 4200 + "\n" + "b" * 600 + " " + "c" * 1000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks[0] == "a" * 4200 + "\n"


def test_split_uses_a_newline_right_at_the_start_of_the_final_fifth() -> None:
    text = "a" * 79 + "\n" + "b" * 50  # the cut after the newline is at unit 80 of a 100-unit window
    assert split_for_line(text, limit=100) == ["a" * 79 + "\n", "b" * 50]


@pytest.mark.parametrize(
    ("text", "limit", "chunks"),
    [
        # skin tones at both ends of the modifier range stay with their emoji
        ("ああ\U0001f44d\U0001f3fb", 4, ["ああ", "\U0001f44d\U0001f3fb"]),
        ("ああ\U0001f44d\U0001f3ff", 4, ["ああ", "\U0001f44d\U0001f3ff"]),
        # an emoji after an emoji is a cluster of its own: the cut may fall between them
        ("ああ\U0001f400\U0001f400", 4, ["ああ\U0001f400", "\U0001f400"]),
        # flags from the very start, with letters at both ends of the regional-indicator range (AZ, JP, AZ)
        (
            "\U0001f1e6\U0001f1ff\U0001f1ef\U0001f1f5\U0001f1e6\U0001f1ff",
            6,
            ["\U0001f1e6\U0001f1ff", FLAG_JP, "\U0001f1e6\U0001f1ff"],
        ),
    ],
)
def test_split_small_windows_keep_clusters_whole(text: str, limit: int, chunks: list[str]) -> None:
    assert split_for_line(text, limit=limit) == chunks


def test_split_prefers_last_newline() -> None:
    text = "a" * 4100 + "\n" + "b" * 500 + "\n" + "c" * 1000
    chunks = split_for_line(text)
    assert chunks[0] == "a" * 4100 + "\n" + "b" * 500 + "\n"


def test_split_at_a_blank_line_does_not_start_the_next_message_with_an_empty_line() -> None:
    # The window (100 units) ends between the two newlines of a blank line: the cut goes after
    # the newline before it instead, so the child's next message does not begin empty.
    text = "a" * 85 + "\n" + "b" * 13 + "\n\n" + "c" * 50
    chunks = split_for_line(text, limit=100)
    assert_valid_chunks(text, chunks, 100)
    assert chunks[0] == "a" * 85 + "\n"
    assert not any(chunk.startswith("\n") for chunk in chunks)


def test_split_takes_a_whole_blank_line_when_the_window_holds_it() -> None:
    text = "a" * 90 + "\n\n" + "c" * 50
    assert split_for_line(text, limit=100) == ["a" * 90 + "\n\n", "c" * 50]


def test_split_a_run_of_newlines_longer_than_the_tail_still_cuts_after_a_newline() -> None:
    text = "a" * 80 + "\n" * 40 + "c" * 50
    chunks = split_for_line(text, limit=100)
    assert_valid_chunks(text, chunks, 100)
    assert chunks[0] == "a" * 80 + "\n" * 20


def test_split_uses_whitespace_when_newline_is_too_early() -> None:
    # Newline at unit 1000 is outside the final 20% of the window; the space is inside.
    text = "a" * 1000 + "\n" + "b" * 3500 + " " + "c" * 1000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert chunks[0] == "a" * 1000 + "\n" + "b" * 3500 + " "
    assert chunks[1] == "c" * 1000


def test_split_ideographic_space_counts_as_whitespace() -> None:
    text = "あ" * 4500 + "\u3000" + "い" * 1000
    chunks = split_for_line(text)
    assert chunks[0] == "あ" * 4500 + "\u3000"


def test_split_hard_cut_without_whitespace() -> None:
    text = "a" * 1000 + " " + "b" * 5000  # the space is too early to be used
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert utf16_len(chunks[0]) == 5000


def test_split_whitespace_stays_with_earlier_chunk() -> None:
    text = ("これは長い文章です。 " * 1000).strip()
    chunks = split_for_line(text, limit=500)
    assert_valid_chunks(text, chunks, 500)
    for earlier, later in pairwise(chunks):
        assert earlier.endswith(" ")
        assert not later.startswith(" ")


def test_split_30000_units_and_batches() -> None:
    line = "今日はどうだった？😀 話してくれてありがとう。\n"
    text = line * (30000 // utf16_len(line) + 1)
    assert utf16_len(text) >= 30000
    chunks = split_for_line(text)
    assert_valid_chunks(text, chunks, 5000)
    assert len(chunks) >= 6
    assert all(chunk.endswith("\n") for chunk in chunks)
    groups = batches(chunks)
    assert len(groups) >= 2
    assert all(1 <= len(group) <= 5 for group in groups)
    assert [c for group in groups for c in group] == chunks


def test_split_oversized_cluster_is_cut_between_code_points() -> None:
    zalgo = "a" + "\u0301" * 20
    chunks = split_for_line(zalgo, limit=5)
    assert_valid_chunks(zalgo, chunks, 5)
    emoji_run = "\U0001f44d" + "\U0001f3fc" * 10  # only astral, limit 3
    chunks = split_for_line(emoji_run, limit=3)
    assert_valid_chunks(emoji_run, chunks, 3)


def test_split_random_property() -> None:
    rng = random.Random(42)
    alphabet = [
        "a", "b", " ", "\n", "\r", "\t", "あ", "\u3000", "😀", "\U0001f44d", "\U0001f3fc",
        "\u200d", "\ufe0f", "\u0301", "\U0001f1ef", "\U0001f1f5", "\U00010348", "\uffff",
    ]  # fmt: skip
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        limit = rng.randint(2, 40)
        chunks = split_for_line(text, limit=limit)
        assert_valid_chunks(text, chunks, limit)
        if not text:
            assert chunks == []
        elif utf16_len(text) <= limit:
            assert chunks == [text]


def test_split_random_clusters_never_broken() -> None:
    # Text built from whole clusters (each at most 11 units, none fusing with
    # its neighbours): with limit >= 11 every cut must fall between clusters.
    rng = random.Random(7)
    clusters = [
        "a", "あ", " ", "\n", "😀", THUMBS_MEDIUM_LIGHT, FAMILY, FLAG_JP, "\u2764\ufe0f",
        "e\u0301", "か\u3099", "\r\n", "\U0001f469\u200d\U0001f4bb", "1\ufe0f\u20e3",
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England flag
    ]  # fmt: skip
    for _ in range(500):
        parts = [rng.choice(clusters) for _ in range(rng.randint(1, 80))]
        text = "".join(parts)
        limit = rng.randint(14, 60)
        boundaries = {0}
        total = 0
        for part in parts:
            total += utf16_len(part)
            boundaries.add(total)
        chunks = split_for_line(text, limit=limit)
        assert_valid_chunks(text, chunks, limit)
        offset = 0
        for chunk in chunks:
            offset += utf16_len(chunk)
            assert offset in boundaries, (parts, chunks)


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "size", "expected_sizes"),
    [
        (0, 5, []),
        (1, 5, [1]),
        (5, 5, [5]),
        (6, 5, [5, 1]),
        (12, 5, [5, 5, 2]),
        (3, 1, [1, 1, 1]),
        (7, 3, [3, 3, 1]),
    ],
)
def test_batches(n: int, size: int, expected_sizes: list[int]) -> None:
    items = list(range(n))
    groups = batches(items, size)
    assert [len(g) for g in groups] == expected_sizes
    assert [x for g in groups for x in g] == items


def test_batches_default_size_and_tuple_input() -> None:
    assert batches(("a", "b", "c", "d", "e", "f", "g")) == [["a", "b", "c", "d", "e"], ["f", "g"]]


@pytest.mark.parametrize("size", [0, -1])
def test_batches_rejects_bad_size(size: int) -> None:
    with pytest.raises(ValueError):
        batches([1, 2], size)


# ---------------------------------------------------------------------------
# describe_line_message
# ---------------------------------------------------------------------------


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
