"""What the App Home shows, as plain data (commands.views.home draws it within Slack's limits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PendingApproval:
    id: str
    title: str
    requester: str
    approve_role: str  # the Role value
    role_name: str  # e.g. "a halt authority"
    expires_at: datetime
    channel: str
    confirming: bool = False  # a break-glass halt waiting for a second halt authority's confirmation
    reason: str = ""  # as the requester typed it (escaped when shown)
    request_id: str = ""


@dataclass(frozen=True)
class Decision:
    """A recent approve/reject/confirm and where the approval is now (read from the approval table, so
    every process's refresh shows it, not only the one that handled the click)."""

    approval_id: str
    title: str
    decided_by: str
    decided_at: datetime
    status: str  # the approval's status now: executing, executed, failed, rejected, confirmed, …
    outcome: str = ""  # what the execution recorded, when it failed


@dataclass(frozen=True)
class AlertLine:
    id: str
    text: str  # mrkdwn, already safe: "platform auth failures: 14 failures > 10 failures"
    since: datetime
    trigger: str = ""
    before_rollback: str = ""  # mrkdwn, safe: how the breach stands to the last completed rollback, if it began before


@dataclass(frozen=True)
class AuditLine:
    seq: int
    at: datetime
    user_id: str
    action: str
    outcome: str


@dataclass(frozen=True)
class HomeFacts:
    now: datetime
    stage: str  # mrkdwn, safe: "*2 of 5, Web internal adoption* (since …)"
    checklist: str  # mrkdwn, safe: "3 of 4 done; pending: `web-config-writes`"
    gate: str  # mrkdwn, safe
    halt: str  # mrkdwn, safe
    rollback: str | None  # mrkdwn, safe; None when none is active and none closed in the last day
    monitoring: str  # mrkdwn, safe: the open window's phase, or "no window open"
    approvals: Sequence[PendingApproval] = field(default_factory=tuple)
    alerts: Sequence[AlertLine] = field(default_factory=tuple)
    audit: Sequence[AuditLine] = field(default_factory=tuple)
    decisions: Sequence[Decision] = field(default_factory=tuple)  # recent ones, newest first
    slack: str | None = None  # mrkdwn, safe: messages Slack has not taken yet, or never did
