"""Block Kit the bridge shows: the root message with its buttons, and the control windows."""

from __future__ import annotations

import json
from typing import Any

from bridge.adapters.slack.names import BUTTON_ACTIONS, CONTROL_VIEW
from bridge.core.case import CaseAction
from bridge.core.policy import Policy
from bridge.core.rules.controls import REASON_REQUIRED


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


def reason_view(policy: Policy, *, action: str, case_text: str) -> dict[str, Any]:
    """The window a root button opens for an action that needs a reason (escalate, block)."""
    number = int(case_text) if case_text.isdigit() else 0
    heading = f"{policy.render('modal_case_label', case=number)}: {policy.render('action_' + action)}"
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"action": action, "case": case_text}),
        "blocks": [{"type": "section", "text": _plain(heading)}, _reason_input(policy, optional=False)],
    }


def shortcut_view(policy: Policy, *, thread_ts: str) -> dict[str, Any]:
    """The window the message shortcut opens: which action, and the reason or memo."""
    options = [
        {"text": _plain(policy.render(f"action_{name}")[:75]), "value": name}
        for name in (CaseAction.CLOSE, CaseAction.ESCALATE, CaseAction.HOLD, CaseAction.BLOCK, CaseAction.UNBLOCK)
    ]
    return {
        "type": "modal",
        "callback_id": CONTROL_VIEW,
        "title": _plain(policy.render("modal_title")[:24]),
        "submit": _plain(policy.render("modal_submit")[:24]),
        "private_metadata": json.dumps({"thread_ts": thread_ts}),
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
