"""The pure core: what happened, what the bridge knows, the policy and the time in; a Decision out.

No I/O and no platform here. The decisions live one concept per module (case, effects, root,
alerts, rules/*, timers/*, intake, controls); this package gathers their names for callers that use
many of them (`from bridge import core`).
"""

from bridge.core.alerts import (
    supervisor_mention as supervisor_mention,
)
from bridge.core.alerts import (
    thread_link as thread_link,
)
from bridge.core.alerts import (
    urgent_deliveries as urgent_deliveries,
)
from bridge.core.case import (
    EARLIER_CASES_SHOWN as EARLIER_CASES_SHOWN,
)
from bridge.core.case import (
    LIVE_CONVERSATION_S as LIVE_CONVERSATION_S,
)
from bridge.core.case import (
    Block as Block,
)
from bridge.core.case import (
    Case as Case,
)
from bridge.core.case import (
    CaseAction as CaseAction,
)
from bridge.core.case import (
    CaseStatus as CaseStatus,
)
from bridge.core.case import (
    CloseReason as CloseReason,
)
from bridge.core.case import (
    Queue as Queue,
)
from bridge.core.case import (
    conversation_is_live as conversation_is_live,
)
from bridge.core.case import (
    parse_case_number as parse_case_number,
)
from bridge.core.deliveries import retry_key as retry_key
from bridge.core.effects import (
    AUTO as AUTO,
)
from bridge.core.effects import (
    NOTHING as NOTHING,
)
from bridge.core.effects import (
    AssignCounsellor as AssignCounsellor,
)
from bridge.core.effects import (
    Audit as Audit,
)
from bridge.core.effects import (
    BlockChild as BlockChild,
)
from bridge.core.effects import (
    ChangeMember as ChangeMember,
)
from bridge.core.effects import (
    ClearClosedArrivals as ClearClosedArrivals,
)
from bridge.core.effects import (
    CloseCase as CloseCase,
)
from bridge.core.effects import (
    CountBlockedMessage as CountBlockedMessage,
)
from bridge.core.effects import (
    Decision as Decision,
)
from bridge.core.effects import (
    DeferMessage as DeferMessage,
)
from bridge.core.effects import (
    DeleteCaseRecords as DeleteCaseRecords,
)
from bridge.core.effects import (
    DropSetAside as DropSetAside,
)
from bridge.core.effects import (
    Effect as Effect,
)
from bridge.core.effects import (
    EraseChildIds as EraseChildIds,
)
from bridge.core.effects import (
    ForgetChild as ForgetChild,
)
from bridge.core.effects import (
    HoldCase as HoldCase,
)
from bridge.core.effects import (
    MarkArrivedClosed as MarkArrivedClosed,
)
from bridge.core.effects import (
    MarkBlockedRisk as MarkBlockedRisk,
)
from bridge.core.effects import (
    MarkBusyNotified as MarkBusyNotified,
)
from bridge.core.effects import (
    MarkClosedNotice as MarkClosedNotice,
)
from bridge.core.effects import (
    MarkUrgent as MarkUrgent,
)
from bridge.core.effects import (
    NoteBlockReminder as NoteBlockReminder,
)
from bridge.core.effects import (
    NoteChildMessage as NoteChildMessage,
)
from bridge.core.effects import (
    NoteClosedArrival as NoteClosedArrival,
)
from bridge.core.effects import (
    NoteCounsellorReply as NoteCounsellorReply,
)
from bridge.core.effects import (
    NoteRecent as NoteRecent,
)
from bridge.core.effects import (
    NoteRisks as NoteRisks,
)
from bridge.core.effects import (
    OpenCase as OpenCase,
)
from bridge.core.effects import (
    ReleaseFlood as ReleaseFlood,
)
from bridge.core.effects import (
    ReplaySetAside as ReplaySetAside,
)
from bridge.core.effects import (
    ScheduleTimer as ScheduleTimer,
)
from bridge.core.effects import (
    SetAsideStream as SetAsideStream,
)
from bridge.core.effects import (
    StartFlood as StartFlood,
)
from bridge.core.effects import (
    TrimAudit as TrimAudit,
)
from bridge.core.effects import (
    TrimSetAside as TrimSetAside,
)
from bridge.core.effects import (
    UnblockChild as UnblockChild,
)
from bridge.core.root import (
    root_buttons as root_buttons,
)
from bridge.core.root import (
    root_text as root_text,
)
from bridge.core.root import (
    root_update as root_update,
)
from bridge.core.root import (
    state_text as state_text,
)
from bridge.core.rules.block_review import (
    on_block_review as on_block_review,
)
from bridge.core.rules.blocks import (
    on_blocked_message as on_blocked_message,
)
from bridge.core.rules.child_message import (
    describe_media as describe_media,
)
from bridge.core.rules.child_message import (
    on_child_message as on_child_message,
)
from bridge.core.rules.counsellor_reply import (
    is_counsellor_reply as is_counsellor_reply,
)
from bridge.core.rules.counsellor_reply import (
    is_internal_note as is_internal_note,
)
from bridge.core.rules.counsellor_reply import (
    on_counsellor_delete as on_counsellor_delete,
)
from bridge.core.rules.counsellor_reply import (
    on_counsellor_edit as on_counsellor_edit,
)
from bridge.core.rules.counsellor_reply import (
    on_counsellor_message as on_counsellor_message,
)
from bridge.core.rules.delivery_outcomes import (
    DELIVERED_REACTION as DELIVERED_REACTION,
)
from bridge.core.rules.delivery_outcomes import (
    FAILED_REACTION as FAILED_REACTION,
)
from bridge.core.rules.delivery_outcomes import (
    after_line_delivered as after_line_delivered,
)
from bridge.core.rules.delivery_outcomes import (
    after_line_failed as after_line_failed,
)
from bridge.core.rules.floods import (
    on_flood_timer as on_flood_timer,
)
from bridge.core.rules.follow import (
    on_child_followed as on_child_followed,
)
from bridge.core.rules.follow import (
    on_child_unfollowed as on_child_unfollowed,
)
from bridge.core.rules.purge import (
    on_purge as on_purge,
)
from bridge.core.rules.retention import (
    ids_closed_before as ids_closed_before,
)
from bridge.core.rules.retention import (
    on_retention as on_retention,
)
from bridge.core.rules.retention import (
    records_closed_before as records_closed_before,
)
from bridge.core.rules.retention import (
    set_aside_kept_since as set_aside_kept_since,
)
from bridge.core.rules.risk import (
    Matcher as Matcher,
)
from bridge.core.rules.risk import (
    RiskCategory as RiskCategory,
)
from bridge.core.rules.risk import (
    RiskLevel as RiskLevel,
)
from bridge.core.rules.risk import (
    Safety as Safety,
)
from bridge.core.rules.risk import (
    risks_in as risks_in,
)
from bridge.core.rules.set_aside import (
    SetAsideAction as SetAsideAction,
)
from bridge.core.rules.set_aside import (
    SetAsideEntry as SetAsideEntry,
)
from bridge.core.rules.set_aside import (
    on_set_aside_action as on_set_aside_action,
)
from bridge.core.timers.busy import (
    busy_timer as busy_timer,
)
from bridge.core.timers.busy import (
    on_busy_timer as on_busy_timer,
)
from bridge.core.timers.closing import (
    on_closing_timer as on_closing_timer,
)
from bridge.core.timers.closing import (
    standing_timers as standing_timers,
)
from bridge.core.timers.guideline import (
    consultation_timers as consultation_timers,
)
from bridge.core.timers.guideline import (
    on_guideline_timer as on_guideline_timer,
)
from bridge.core.timers.guideline import (
    on_unanswered_close_timer as on_unanswered_close_timer,
)
from bridge.core.timers.guideline import (
    on_unanswered_timer as on_unanswered_timer,
)
from bridge.core.timers.opening import (
    on_opening_timer as on_opening_timer,
)
from bridge.core.timers.silence import (
    on_silence_timer as on_silence_timer,
)
from bridge.core.timers.silence import (
    silence_timers as silence_timers,
)
