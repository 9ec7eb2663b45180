"""Every text the bridge sends or shows, by name: the placeholders each may use (with sample
values of the types the bridge passes at run time) and, for a few, a default wording.

This one table drives the policy file's schema, its validation, the samples `bridge check-config`
renders, and `Policy.render`. A new text is added here and in config/bridge.toml, nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bridge.core.ids import CaseNumber, SlackUserId, ThreadTs
from bridge.core.parts import GroupMention, OnDuty, Text, ThreadLink, UserMention


@dataclass(frozen=True)
class TextSpec:
    """One text: its placeholders with samples, and its wording when the policy file has none."""

    samples: Mapping[str, object]
    default: str | None = None  # None: the policy file must give it
    length: int | None = None  # an exact length in characters, for tables such as weekday names


# Placeholders every text may use, filled from the policy itself (see Policy.render).
POLICY_VALUES = frozenset({"service", "hotline", "hours"})

# Each text may use only its placeholders. The samples have the types the bridge passes at run
# time, so a format spec that would fail then (such as {case:s}) fails validation now. Mentions,
# links and texts made of other texts are parts (bridge/core/parts.py), which take no format
# spec; check-config shows them as Slack renders them.
_SERVICE = {"service": "多治見子どもLINE相談", "hotline": "0120-967-866"}
_USER = UserMention(SlackUserId("U012ABCDEF"))
_SUPERVISORS: Text = (GroupMention("S012ABC"), " ")  # the mention and its space, or nothing
_LINK = ThreadLink(CaseNumber(12), ThreadTs("1700000000.000100"))
_CATEGORY = "自殺念慮、過量服薬"  # the labels of the risk categories found (never the child's words)
_TABLE: dict[str, TextSpec] = {
    "welcome": TextSpec({**_SERVICE, "hours": "火〜金 13:00〜19:00、土 12:00〜18:00（12月29日〜1月3日はお休み）"}),
    "closed_reply": TextSpec({**_SERVICE, "next_opening": "火曜日 13:00"}),
    "closed_reply_no_opening": TextSpec({**_SERVICE}),
    "busy_notice": TextSpec({**_SERVICE, "place": 3}),
    "case_root": TextSpec(
        {
            "case": 12,
            "opened_at": "11/30(火) 13:05",
            "state": ("対応待ち（13:05から）",),
            "earlier": "（以前の相談: #3, #9）",
        }
    ),
    "earlier_cases": TextSpec({"cases": "#3, #9"}),
    "unanswered_alert": TextSpec({"mention": OnDuty(), "case": 12, "minutes": 5, "link": _LINK}),
    "soft_limit_warning_note": TextSpec({"minutes": 50}),
    "idle_checkin": TextSpec({**_SERVICE}),
    "idle_closed_child": TextSpec({**_SERVICE}),
    "idle_closed_note": TextSpec({"minutes": 10}),
    "closed_how_idle": TextSpec({}),
    "state_held": TextSpec({}),
    "hold_button": TextSpec({}),
    "hold_note": TextSpec({"user": _USER}),
    "hold_done": TextSpec({"case": 12}),
    "hold_not_open": TextSpec({"case": 12}),
    "hold_usage": TextSpec({}),
    "control_wrong_channel": TextSpec({"command": "/close"}),
    "close_button": TextSpec({}),
    "escalate_button": TextSpec({}),
    "block_button": TextSpec({}),
    "unblock_button": TextSpec({}),
    "close_confirm": TextSpec({"case": 12}),
    "closed_by_counsellor_child": TextSpec({**_SERVICE}),
    "close_note": TextSpec({"user": _USER, "memo": "（メモ: 学校に相談予定）"}),
    "close_memo": TextSpec({"memo": "学校に相談予定"}),
    "close_done": TextSpec({"case": 12}),
    "closed_how_counsellor": TextSpec({"user": _USER}),
    "closed_how_blocked": TextSpec({}),
    "closed_how_unanswered": TextSpec({}, default="応答のないまま期限が過ぎたため終了"),
    "unanswered_closed_note": TextSpec(
        {"hours": 72},
        default=(
            ":hourglass: {hours} 時間、誰も応答しなかったため、この相談を終了しました。"
            "相談者が次にメッセージを送ると、新しい相談になります。"
        ),
    ),
    "usage_close": TextSpec({}),
    "usage_block": TextSpec({}),
    "usage_unblock": TextSpec({}),
    "usage_escalate": TextSpec({}),
    "control_not_member": TextSpec({}),
    "control_roster_unknown": TextSpec({}),
    "control_supervisors_only": TextSpec({}),
    "control_unknown_case": TextSpec({"case": 12}),
    "control_case_closed": TextSpec({"case": 12}),
    "control_no_case": TextSpec({}),
    "escalation_alert": TextSpec(
        {
            "mention": _SUPERVISORS,
            "case": 12,
            "reason": "自傷をほのめかしている",
            "user": _USER,
            "link": _LINK,
        }
    ),
    "escalation_note": TextSpec({"user": _USER, "reason": "自傷をほのめかしている"}),
    "escalate_done": TextSpec({"case": 12}),
    "emergency_checklist": TextSpec({**_SERVICE}),
    "state_urgent": TextSpec({}),
    "risk_alert": TextSpec({"mention": _SUPERVISORS, "case": 12, "link": _LINK, "category": _CATEGORY}),
    "risk_note": TextSpec({"category": _CATEGORY}),
    # Above every message of the child's in the thread (plain text; only the bridge writes it).
    "child_label": TextSpec({}, default="💬 相談者からのメッセージ"),
    "risk_watch_note": TextSpec(
        {"category": _CATEGORY},
        default=(
            ":eyes: 【自動検知】気をつけて読んでほしい言葉がありました（{category}）。"
            "必要ならスーパーバイザーに相談してください。"
        ),
    ),
    "blocked_risk_alert": TextSpec({"mention": _SUPERVISORS, "case": 12, "link": _LINK, "category": _CATEGORY}),
    "crisis_lines": TextSpec({**_SERVICE}),
    "block_note": TextSpec({"user": _USER, "at": "11/30(火) 14:05", "reason": "無関係な投稿の連続"}),
    "block_review_reminder": TextSpec(
        {
            "mention": _SUPERVISORS,
            "case": 12,
            "since": "2026/09/01",
            "days": 90,
            "reason": "無関係な投稿の連続",
            "link": _LINK,
        },
        default=(
            ":lock: {mention}ブロックの見直し: 相談 #{case} の相談者は {since} から {days} 日間ブロックされています"
            "（理由: {reason}）。このままでよいか確かめてください。解除するときは /unblock {case}\n{link}"
        ),
    ),
    "purge_note": TextSpec(
        {"case": 12},
        default=(
            ":wastebasket: 依頼により、この相談（#{case}）の記録をブリッジから消去しました。"
            "このスレッドに返信しても相談者には届きません。Slack のメッセージは Slack の保存設定に従います。"
        ),
    ),
    "block_done": TextSpec({"case": 12}),
    "block_already": TextSpec({"case": 12}),
    "state_blocked": TextSpec({"count": 3}),
    "unblock_note": TextSpec({"user": _USER}),
    "unblock_done": TextSpec({"case": 12}),
    "unblock_not_blocked": TextSpec({"case": 12}),
    "cases_header": TextSpec({"count": 2}),
    "cases_line": TextSpec({"case": 12, "state": ("対応待ち（13:05から）",), "waited": 7, "counsellor": _USER}),
    "cases_nobody": TextSpec({}),
    "cases_none": TextSpec({}),
    "flood_notice_child": TextSpec({**_SERVICE}),
    "flood_note": TextSpec({"until": "14:10"}),
    "flood_alert": TextSpec({"case": 12, "until": "14:10", "link": _LINK}),
    "flood_released_note": TextSpec({"messages": 4, "stickers": 31}),
    "flood_dropped_note": TextSpec(
        {"dropped": 250, "kept": 100},
        default=(
            ":wastebasket: 保留中のメッセージが多すぎたため、最初の {kept} 件のあとに届いた"
            " {dropped} 件は保存していません。"
        ),
    ),
    "state_flood": TextSpec({"until": "14:10"}),
    "modal_title": TextSpec({}),
    "modal_submit": TextSpec({}),
    "modal_action_label": TextSpec({}),
    "modal_reason_label": TextSpec({}),
    "modal_case_label": TextSpec({"case": 12}),
    "modal_reason_required": TextSpec({}),
    "action_close": TextSpec({}),
    "action_escalate": TextSpec({}),
    "action_block": TextSpec({}),
    "action_unblock": TextSpec({}),
    "action_hold": TextSpec({}),
    "soft_limit_note": TextSpec({"minutes": 60}),
    "overtime_alert": TextSpec({"case": 12, "minutes": 90, "link": _LINK}),
    "state_waiting": TextSpec({"since": "13:05"}),
    "state_waiting_closed": TextSpec({"since": "12/01(火) 07:40"}),
    "state_with_counsellor": TextSpec({"counsellor": _USER, "since": "13:12"}),
    "state_closed": TextSpec({"how": ("相談者がブロック",), "at": "13:50"}),
    "closed_how_unfollowed": TextSpec({}),
    "closing_reminder": TextSpec({"minutes": 15, "closing_at": "19:00"}),
    "opening_digest": TextSpec({"count": 2, "cases": "• #12 (12/01 07:40)\n• #13 (12/01 09:02)"}),
    "opening_digest_line": TextSpec({"case": 12, "arrived_at": "12/01 07:40"}),
    "unfollow_note": TextSpec({"case": 12}),
    "edit_note": TextSpec({}),
    "delete_note": TextSpec({}),
    "closed_case_ephemeral": TextSpec({"case": 12}),
    "delivery_failed_note": TextSpec({"reason": "LINEが受け付けませんでした (400)"}),
    "opening_this_week": TextSpec(
        {"weekday": "火", "time": "13:00", "month": 12, "day": 1}, default="{weekday}曜日 {time}"
    ),
    "opening_later": TextSpec(
        {"weekday": "火", "time": "13:00", "month": 1, "day": 5}, default="{month}月{day}日({weekday}) {time}"
    ),
    "hours_closures": TextSpec({"closures": "12月29日〜1月3日"}, default="（{closures}はお休み）"),
    "hours_none": TextSpec({}, default="受付時間は決まっていません"),
    "weekday_names": TextSpec({}, default="月火水木金土日", length=7),
    "media_sticker": TextSpec({}, default="スタンプ"),
    "media_image": TextSpec({}, default="画像"),
    "media_video": TextSpec({}, default="動画"),
    "media_audio": TextSpec({}, default="音声"),
    "media_file": TextSpec({}, default="ファイル"),
    "media_location": TextSpec({}, default="位置情報"),
    "media_unknown": TextSpec({}, default="未対応のメッセージ"),
}

TEXTS: Mapping[str, TextSpec] = MappingProxyType(_TABLE)
