"""Texts for the counsellors as the core makes them: words, and parts left whole. Pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config.policy_file import load_policy
from bridge.core.ids import CaseNumber, SlackUserId, ThreadTs
from bridge.core.parts import (
    ChildWords,
    GroupMention,
    OnDuty,
    Text,
    ThreadLink,
    UserMention,
    compose,
    concat,
    join,
    plain,
    text_from_payload,
    text_to_payload,
)

EVERY_PART: Text = (
    "words ",
    UserMention(SlackUserId("U1")),
    GroupMention("S1"),
    OnDuty(),
    ThreadLink(CaseNumber(12), ThreadTs("1800000000.000100")),
    ThreadLink(CaseNumber(13), None),
    ChildWords("<!here> & 😀"),
)


def test_a_placeholder_keeps_a_part_whole() -> None:
    text = compose(
        "{user} が #{case} を終了（{how}）",
        {"user": UserMention(SlackUserId("U1")), "case": 12, "how": ("x", OnDuty())},
    )
    assert text == (UserMention(SlackUserId("U1")), " が #12 を終了（x", OnDuty(), "）")


def test_other_values_are_formatted_as_str_format_would() -> None:
    values = {"case": 7, "minutes": 5.5, "name": "a{b}"}
    template = "#{case:03d} {minutes:.1f} {name!r} {{literal}} {name:>{case}}"
    assert compose(template, values) == (template.format_map(values),)


@pytest.mark.parametrize("template", ["{user:>10}", "{user!r}", "{user:s}"])
def test_a_part_takes_no_format(template: str) -> None:
    with pytest.raises(ValueError, match="takes no format"):
        compose(template, {"user": UserMention(SlackUserId("U1"))})


@pytest.mark.parametrize(("template", "error"), [("{}", ValueError), ("{0}", ValueError), ("{nope}", KeyError)])
def test_a_template_fails_as_str_format_would(template: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        compose(template, {"user": "x"})
    with pytest.raises(error):
        template.format_map({"user": "x"})


def test_texts_concatenate_and_join_merging_their_words() -> None:
    assert concat("a", "", ("b", UserMention(SlackUserId("U1"))), "c", ()) == (
        "ab",
        UserMention(SlackUserId("U1")),
        "c",
    )
    assert join("\n", [("a",), (OnDuty(),), ()]) == ("a\n", OnDuty(), "\n")
    assert join("\n", []) == ()


def test_a_plain_text_holds_only_words() -> None:
    assert plain(("a", "b")) == "ab"
    with pytest.raises(TypeError):
        plain(("a", UserMention(SlackUserId("U1"))))


def test_the_policy_renders_plain_texts_and_texts_with_parts() -> None:
    policy = load_policy(Path(__file__).resolve().parent.parent / "config" / "bridge.toml")
    note = policy.render_parts("hold_note", user=UserMention(SlackUserId("U1")))
    assert note[1] == UserMention(SlackUserId("U1")) and isinstance(note[0], str) and isinstance(note[2], str)
    assert policy.render("hold_note", user="someone") == plain(note[:1]) + "someone" + plain(note[2:])
    with pytest.raises(TypeError):
        policy.render("hold_note", user=UserMention(SlackUserId("U1")))  # a text for the child never holds a mention
    assert policy.render_parts("welcome") == (policy.render("welcome"),)


def test_every_part_survives_its_payload_through_json() -> None:
    payload = json.loads(json.dumps(text_to_payload(EVERY_PART)))
    assert text_from_payload(payload) == EVERY_PART


def test_a_text_queued_as_a_str_reads_as_words() -> None:
    assert text_from_payload("<@U1> 済み") == ("<@U1> 済み",)
    assert text_from_payload("") == ()


@pytest.mark.parametrize("payload", [[{"part": "fax"}], [{"user": "U1"}], {"part": "user"}, 3])
def test_an_unknown_part_is_an_error(payload: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        text_from_payload(payload)
