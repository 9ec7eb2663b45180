"""Reading a webhook body's JSON within limits: what is refused, what is kept, and how fast."""

from __future__ import annotations

import contextlib
import json
import time

import pytest

from bridge.adapters import json_body
from bridge.adapters.json_body import MAX_DEPTH, MAX_NUMBER_DIGITS, JsonBodyError, loads
from bridge.adapters.line.webhook import MAX_EVENTS, WebhookBodyError, split_webhook_body
from bridge.fakes.server import time_scale
from tests.reference import reference_file


def nested(depth: int) -> bytes:
    """An object and arrays alternating, depth levels in all."""
    opening = b"".join(b'{"a":' if level % 2 == 0 else b"[" for level in range(depth))
    closing = b"".join(b"}" if level % 2 == 0 else b"]" for level in reversed(range(depth)))
    return opening + b"1" + closing


def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused() -> None:
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    with pytest.raises(JsonBodyError, match=f"more than {MAX_DEPTH} levels"):
        loads(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
    ids=["closed", "never-closed", "objects"],
)
def test_deep_nesting_is_refused_where_the_parser_would_overflow(body: bytes) -> None:
    with pytest.raises(RecursionError):
        json.loads(body)  # what the check is for
    with pytest.raises(JsonBodyError, match="levels deep"):
        loads(body)


def test_many_brackets_side_by_side_are_not_depth() -> None:
    body = b"[" + b",".join([b"[[1]]"] * 10_000) + b"]"
    assert len(loads(body)) == 10_000


@pytest.mark.parametrize(
    "text",
    [
        '["' + "[" * 200 + '"]',  # brackets inside a string are text
        '{"k' + "{" * 200 + '": 1}',  # in a key too
        '["a\\"' + "[" * 200 + '"]',  # an escaped quote does not end the string
        '["\\\\", ' + "[" * 10 + "1" + "]" * 10 + "]",  # an escaped backslash does not escape the quote
    ],
    ids=["in-string", "in-key", "escaped-quote", "escaped-backslash"],
)
def test_only_brackets_outside_strings_count(text: str) -> None:
    assert loads(text.encode()) == json.loads(text)


def test_an_escaped_quote_cannot_hide_nesting_from_the_check() -> None:
    # After "\\" the quote closes the string: the brackets that follow are structure.
    body = b'["\\\\", ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"]"
    with pytest.raises(JsonBodyError, match="levels deep"):
        loads(body)


def test_numbers_up_to_the_digit_limit_are_read_and_longer_ones_refused() -> None:
    assert loads(b'{"n": ' + b"9" * MAX_NUMBER_DIGITS + b"}") == {"n": int("9" * MAX_NUMBER_DIGITS)}
    for long in (b"9" * (MAX_NUMBER_DIGITS + 1), b"9" * 5000, b"0." + b"1" * 5000, b"1e" + b"9" * 5000):
        with pytest.raises(JsonBodyError, match=f"more than {MAX_NUMBER_DIGITS} digits"):
            loads(b'{"n": ' + long + b"}")
    # Digits inside a string are text, however many.
    assert loads(b'{"n": "' + b"9" * 5000 + b'"}') == {"n": "9" * 5000}


def test_an_integer_python_refuses_to_convert_is_refused_as_a_body_error() -> None:
    with pytest.raises(ValueError, match="4300"):
        json.loads(b"1" * 5000)  # not a JSONDecodeError: the old catch missed it
    with pytest.raises(JsonBodyError):
        loads(b"1" * 5000)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_nan_and_infinity_are_refused(constant: bytes) -> None:
    with pytest.raises(JsonBodyError):
        loads(b'{"n": ' + constant + b"}")


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"a": 1', b'{"a": "open', b'{"a": "x\\', b"\xff\xfe{}", b'"\xed\xa0\x80"', b"[}", b"]["],
    ids=["empty", "open", "unclosed", "open-string", "trailing-backslash", "not-utf8", "encoded-surrogate", "x", "y"],
)
def test_what_is_not_json_is_a_body_error(body: bytes) -> None:
    with pytest.raises(JsonBodyError):
        loads(body)


def test_lone_surrogates_become_replacement_characters_in_keys_and_values() -> None:
    body = b'{"k\\ud800": ["x\\udc00y", "pair \\ud83d\\ude00", {"z": "\\uDBFF"}]}'
    assert loads(body) == {"k\ufffd": ["x\ufffdy", "pair \U0001f600", {"z": "\ufffd"}]}
    assert json.dumps(loads(body), ensure_ascii=False).encode()  # encodable: no surrogate is left


def test_text_without_surrogate_escapes_is_unchanged() -> None:
    body = reference_file("line-bot-sdk/webhook.json").read_bytes()
    assert loads(body) == json.loads(body)
    assert json_body.without_lone_surrogates({"a": ["ü", 1, None]}) == {"a": ["ü", 1, None]}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 500_000 + b"]" * 500_000,
        b'["' + b'\\"' * 500_000,  # one string left open: a regex retrying each quote is quadratic here
        b"[" + b"[1]," * 250_000 + b"[1]]",
        b'"' + b"\\\\" * 500_000,
    ],
    ids=["deep", "escaped-quotes", "wide", "backslashes"],
)
def test_a_hostile_megabyte_is_handled_in_well_under_a_second(body: bytes) -> None:
    """Linear work (about 0.1 s for the slowest here, most of it the parser's own on "wide"): a
    quadratic step, such as a regex retried from every quote, would take minutes. CPU time of this
    process, so other work on the machine does not count."""
    started = time.process_time()
    with contextlib.suppress(JsonBodyError):
        loads(body)
    assert time.process_time() - started < 1.0 * time_scale()


def test_a_line_body_over_the_event_limit_is_refused_whole() -> None:
    def body(count: int) -> bytes:
        return json.dumps({"events": [{"type": "x", "webhookEventId": f"E{i}"} for i in range(count)]}).encode()

    assert len(split_webhook_body(body(MAX_EVENTS))) == MAX_EVENTS
    with pytest.raises(WebhookBodyError, match=f"more than {MAX_EVENTS} events"):
        split_webhook_body(body(MAX_EVENTS + 1))


def test_a_line_event_with_a_lone_surrogate_is_kept_with_a_replacement_character() -> None:
    body = b'{"events": [{"type": "message", "message": {"type": "text", "text": "half \\ud83d emoji"}}]}'
    [(_, encoded)] = split_webhook_body(body)
    assert json.loads(encoded)["message"]["text"] == "half \ufffd emoji"
    assert "\\ud83d" not in encoded
