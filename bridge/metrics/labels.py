"""The only label values a metric may carry: small fixed sets, never a case number, a user ID,
a lane's name, a thread or a text. A label outside these sets is a bug (tests/test_metrics_e2e.py
checks every label of a real scrape)."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """Where a webhook came from."""

    LINE = "line"
    SLACK = "slack"


class WebhookOutcome(StrEnum):
    """How the web answered a webhook, as its handlers tell the cases apart."""

    ACCEPTED = "accepted"  # 200: recorded (or nothing in it to record)
    DUPLICATE = "duplicate"  # 200: every event in it was recorded before (LINE redelivered it)
    BAD_SIGNATURE = "bad_signature"  # 401
    BAD_BODY = "bad_body"  # 400: malformed, or past a limit of the JSON reader
    TOO_LARGE = "too_large"  # 413
    TIMED_OUT = "timed_out"  # 408: the body did not arrive in time
    CLIENT_GONE = "client_gone"  # the client disconnected before its whole body arrived
    OTHER_APP = "other_app"  # 403 (or 200, nothing done): it names another app or workspace
    NOT_READY = "not_ready"  # 503: this app and workspace are not yet learned from Slack
    UNHANDLED = "unhandled"  # Bolt's own refusal (4xx): no listener takes this kind of request
    UNAVAILABLE = "unavailable"  # 503: Redis did not take it (the sender redelivers)


# Which outcomes each source's handler can give (the counters start at 0 for these).
OUTCOMES_OF: dict[Source, tuple[WebhookOutcome, ...]] = {
    Source.LINE: (
        WebhookOutcome.ACCEPTED,
        WebhookOutcome.DUPLICATE,
        WebhookOutcome.BAD_SIGNATURE,
        WebhookOutcome.BAD_BODY,
        WebhookOutcome.TOO_LARGE,
        WebhookOutcome.TIMED_OUT,
        WebhookOutcome.CLIENT_GONE,
        WebhookOutcome.UNAVAILABLE,
    ),
    Source.SLACK: (
        WebhookOutcome.ACCEPTED,
        WebhookOutcome.BAD_SIGNATURE,
        WebhookOutcome.BAD_BODY,
        WebhookOutcome.TOO_LARGE,
        WebhookOutcome.TIMED_OUT,
        WebhookOutcome.CLIENT_GONE,
        WebhookOutcome.OTHER_APP,
        WebhookOutcome.NOT_READY,
        WebhookOutcome.UNHANDLED,
        WebhookOutcome.UNAVAILABLE,
    ),
}


class EventOutcome(StrEnum):
    """What became of one event of a LINE webhook."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"


class Platform(StrEnum):
    """Where a delivery goes."""

    LINE = "line"
    SLACK = "slack"


class DeliveryOutcome(StrEnum):
    """How a delivery was settled (once per delivery; a retry is not a settlement)."""

    DELIVERED = "delivered"
    FAILED = "failed"  # refused: reported where a person looks
    SET_ASIDE = "set_aside"  # kept for an operator (bridge set-aside)


def platform_of(lane: str) -> Platform | None:
    """The platform a lane delivers to, from its name's prefix ("slack:12", "line:<pseudonym>");
    None for a name of no known platform (never a label)."""
    prefix, colon, _ = lane.partition(":")
    try:
        return Platform(prefix) if colon else None
    except ValueError:
        return None
