"""The bridge's own check of Slack's request signatures, apart from Bolt's second check."""

from __future__ import annotations

import pytest

from bridge.adapters.slack.verify import SIGNATURE_WINDOW_S, sign, signature_is_valid

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
