"""Unit tests for bridge.core.text.line_split (and graphemes): UTF-16 length, cuts and batches for LINE."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from bridge.core.text.line_split import batches, split_for_line, utf16_len

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
