"""The names the bridge registers with Slack (see config/slack-app-manifest.yaml) and puts on its
own requests and posts. One place, so the listeners, the views and the parser agree."""

from __future__ import annotations

CONTROL_EVENT = "bridge_control"
# Root buttons: action_id per case action. Escalate and block ask for a reason in a window first.
BUTTON_ACTIONS = {
    "hold": "hold_case",
    "close": "close_case",
    "escalate": "escalate_case",
    "block": "block_case",
    "unblock": "unblock_case",
}
COMMANDS = {
    "/hold": "hold",
    "/close": "close",
    "/block": "block",
    "/unblock": "unblock",
    "/escalate": "escalate",
    "/cases": "cases",
}
SHORTCUT = "case_actions"  # the message shortcut on any message of a case thread
CONTROL_VIEW = "case_control"  # the window that asks for the action and the reason
# Message metadata event types on the bridge's own posts (how a retry finds an earlier post).
DELIVERY_EVENT_TYPE = "bridge_delivery"
CASE_EVENT_TYPE = "bridge_case"
