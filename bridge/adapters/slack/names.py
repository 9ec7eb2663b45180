"""The names the bridge registers with Slack (see config/slack-app-manifest.yaml) and puts on its
own requests and posts. One place, so the listeners, the views and the parser agree."""

from __future__ import annotations

from bridge.core.case import CaseAction

CONTROL_EVENT = "bridge_control"
# Root buttons: action_id per case action. Escalate and block ask for a reason in a window first.
BUTTON_ACTIONS: dict[CaseAction, str] = {
    CaseAction.HOLD: "hold_case",
    CaseAction.CLOSE: "close_case",
    CaseAction.ESCALATE: "escalate_case",
    CaseAction.BLOCK: "block_case",
    CaseAction.UNBLOCK: "unblock_case",
}
COMMANDS: dict[str, CaseAction] = {
    "/hold": CaseAction.HOLD,
    "/close": CaseAction.CLOSE,
    "/block": CaseAction.BLOCK,
    "/unblock": CaseAction.UNBLOCK,
    "/escalate": CaseAction.ESCALATE,
    "/cases": CaseAction.CASES,
}
SHORTCUT = "case_actions"  # the message shortcut on any message of a case thread
CONTROL_VIEW = "case_control"  # the window that asks for the action and the reason
# Message metadata event types on the bridge's own posts (how a retry finds an earlier post).
DELIVERY_EVENT_TYPE = "bridge_delivery"
CASE_EVENT_TYPE = "bridge_case"
