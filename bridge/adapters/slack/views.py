"""Block Kit the bridge shows: the root message with its buttons, and the control windows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bridge.adapters.slack.names import BUTTON_ACTIONS, CONTROL_VIEW
from bridge.core.case import CaseAction
from bridge.core.policy import Policy
from bridge.core.rules.controls import REASON_REQUIRED


def _in(channel: str | None) -> dict[str, str]:
    """The channel a window keeps in its metadata, if known (Slack gives it back on submission)."""
    return {"channel": channel} if channel else {}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _reason_input(policy: Policy, *, optional: bool) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "reason",
        "optional": optional,
        "label": _plain(policy.render("modal_reason_label")),
        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 500},
    }


def reason_view(policy: Policy, *, action: str, case_text: str, channel: str | None = None) -> dict[str, Any]:
    """The window a root button opens for an action that needs a reason (escalate, block); it
    keeps the channel of the root (a pool's) for the request it makes."""
    number = int(case_text) if case_text.isdigit() else 0
    heading = f"{policy.render('modal_case_label', case=number)}: {policy.render('action_' + action)}"
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"action": action, "case": case_text, **_in(channel)}),
        "blocks": [{"type": "section", "text": _plain(heading)}, _reason_input(policy, optional=False)],
    }


def notice_view(policy: Policy, text: str) -> dict[str, Any]:
    """A window that only says something (no submit button, so nothing can be requested)."""
    return {
        "type": "modal",
        "title": _plain(policy.render("modal_title")[:24]),
        "close": _plain("OK"),
        "blocks": [{"type": "section", "text": _plain(text[:3000])}],
    }


def shortcut_view(policy: Policy, *, thread_ts: str, channel: str | None = None) -> dict[str, Any]:
    """The window the message shortcut opens: which action, and the reason or memo. It keeps the
    thread, and its channel (a ts is unique only within a channel), for the request it makes."""
    options = [
        {"text": _plain(policy.render(f"action_{name}")[:75]), "value": name}
        for name in (CaseAction.CLOSE, CaseAction.ESCALATE, CaseAction.HOLD, CaseAction.BLOCK, CaseAction.UNBLOCK)
    ]
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"thread_ts": thread_ts, **_in(channel)}),
        "blocks": [
            {
                "type": "input",
                "block_id": "action",
                "label": _plain(policy.render("modal_action_label")),
                "element": {"type": "static_select", "action_id": "action", "options": options},
            },
            _reason_input(policy, optional=True),
        ],
    }


def root_blocks(
    text: str, *, case: int, buttons: list[tuple[CaseAction, str]], close_confirm: str | None = None
) -> list[dict[str, Any]]:
    """The root message's blocks: its text, and a button per (action, label) offered."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    elements = []
    for action, label in buttons:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": BUTTON_ACTIONS[action],
            "value": str(case),
            "text": _plain(label),
        }
        if action in REASON_REQUIRED:  # the weighty ones
            element["style"] = "danger"
        if action is CaseAction.CLOSE and close_confirm:
            element["confirm"] = {
                "title": _plain(label),
                "text": _plain(close_confirm),
                "confirm": _plain(label),
                "deny": _plain("×"),
            }
        elements.append(element)
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def root_blocks_of(policy: Policy, case: int, text: str, buttons: tuple[CaseAction, ...]) -> list[dict[str, Any]]:
    """A root message's blocks: its text, and the buttons (in the policy's words) of the actions
    it offers."""
    labels = [(name, policy.render(f"{name}_button")) for name in buttons]
    return root_blocks(text, case=case, buttons=labels, close_confirm=policy.render("close_confirm", case=case))


# Slack's limit for the text of a section block.
SECTION_CHARS = 3000


def child_blocks(policy: Policy, words: str) -> list[dict[str, Any]]:
    """A child's message as Slack shows it: under a fixed label that only the bridge writes,
    the words as plain text (no formatting, no emoji codes, no links, nothing that notifies),
    so nothing a child types can look like the bridge's own notes."""
    label = policy.render("child_label")
    blocks: list[dict[str, Any]] = [{"type": "context", "elements": [{"type": "plain_text", "text": label}]}]
    for start in range(0, max(1, len(words)), SECTION_CHARS):
        chunk = words[start : start + SECTION_CHARS] or " "
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": chunk, "emoji": False}})
    return blocks


def children_blocks(policy: Policy, messages: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Several of a child's messages in one Slack message, oldest first, as (words, time): each
    as child_blocks shows one, its label followed by the time the bridge received it."""
    blocks: list[dict[str, Any]] = []
    for words, received in messages:
        one = child_blocks(policy, words)
        one[0]["elements"].append({"type": "plain_text", "text": received})
        blocks += one
    return blocks
