"""The bridge's own check of Slack's request signatures, apart from Bolt's second check, and its
one reading of the payload, the way Bolt reads it."""

from __future__ import annotations

import pytest

from bridge.adapters.slack.verify import SIGNATURE_WINDOW_S, MalformedBody, payload_of, sign, signature_is_valid

SECRET = "slack-signing-secret"
BODY = b'{"type":"event_callback"}'
NOW = 1_764_600_000


def check(timestamp: int, *, now: float = NOW, body: bytes = BODY, secret: str = SECRET) -> bool:
    headers = sign(SECRET, BODY, timestamp=timestamp)
    return signature_is_valid(secret, body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"], now=now)


@pytest.mark.parametrize("offset", [0, 1, -1, SIGNATURE_WINDOW_S, -SIGNATURE_WINDOW_S])
def test_a_signature_within_the_window_is_accepted(offset: int) -> None:
    assert check(NOW + offset)


@pytest.mark.parametrize(
    ("offset", "why"),
    [
        (-SIGNATURE_WINDOW_S - 1, "a replay of an old request"),
        (SIGNATURE_WINDOW_S + 1, "a timestamp from the future"),
        (-86_400, "a day old"),
        (86_400, "a day ahead"),
    ],
)
def test_a_signature_outside_the_window_is_refused(offset: int, why: str) -> None:
    assert not check(NOW + offset), why


def test_a_signature_over_other_bytes_or_with_another_secret_is_refused() -> None:
    assert not check(NOW, body=BODY + b" ")
    assert not check(NOW, secret="another-secret")


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, "v0=x"), ("", "v0=x"), (str(NOW), None), (str(NOW), ""), ("soon", "v0=x"), ("1e9", "v0=x")],
)
def test_missing_or_malformed_headers_are_refused(timestamp: str | None, signature: str | None) -> None:
    assert not signature_is_valid(SECRET, BODY, timestamp, signature, now=NOW)


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"type": "event_callback"}', "application/json", {"type": "event_callback"}),
        (b'{"type": "event_callback"}', "application/json; charset=utf-8", {"type": "event_callback"}),
        (b'{"type": "url_verification"}', None, {"type": "url_verification"}),  # a body starting with {
        (b'{"type": "x"}', FORM, {"type": "x"}),  # JSON however labelled, as Bolt reads it
        (b"payload=%7B%22type%22%3A%22block_actions%22%7D", FORM, {"type": "block_actions"}),
        (b"command=%2Fclose&text=12", FORM, {"command": "/close", "text": "12"}),
        (b"command=%2Fclose&text=payload", FORM, {}),  # "payload" only in a value: Bolt reads nothing
    ],
    ids=["json", "json-charset", "brace", "brace-as-form", "interaction", "command", "payload-word"],
)
def test_the_payload_is_read_as_bolt_reads_it(body: bytes, content_type: str | None, expected: object) -> None:
    from slack_bolt.request.internals import parse_body

    assert payload_of(body, content_type) == expected
    assert parse_body(body.decode(), content_type.split(";")[0] if content_type else None) == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"\xff", "application/json"),
        (b"{oops", "application/json"),
        (b"[1]", "application/json"),
        (b"payload=%7Bbroken", FORM),
        (b"payload=%5B1%5D", FORM),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "application/json"),
        (b"payload=" + b"%5B" * 100 + b"%5D" * 100, FORM),
        (b'{"a": ' + b"1" * 5000 + b"}", "application/json"),
    ],
    ids=["empty", "not-utf8", "broken", "array", "broken-payload", "array-payload", "deep", "deep-payload", "digits"],
)
def test_a_payload_bolt_cannot_read_or_over_the_limits_is_malformed(body: bytes, content_type: str) -> None:
    with pytest.raises(MalformedBody):
        payload_of(body, content_type)
