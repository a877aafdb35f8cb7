"""What the App Home shows, read from the store and the backend (the view itself is commands.views.home).

One `facts()` call serves every viewer of a refresh: the backend is asked twice (health: the deployed
version, for the checklist and to tell whether the last gate was for it; trading-control for the halt
state), the rest comes from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.approvals.actions import ActionSpec
from bot.approvals.machine import OPEN, Status
from bot.approvals.outbox import METHOD, Outbox
from bot.approvals.policy import ROLE_NAMES, Role
from bot.approvals.store import params_of
from bot.audit.log import AuditLog
from bot.clients.backend import TradingBackend
from bot.clients.backend_errors import BackendError
from bot.cutover.engine import CheckState, stage_statuses
from bot.cutover.service import CutoverService
from bot.cutover.words import abbrev, gate_summary
from bot.errors import OpsbotError
from bot.gate.store import evaluation_view
from bot.home.model import AlertLine, AuditLine, Decision, HomeFacts, PendingApproval
from bot.monitoring.signals import against
from bot.monitoring.store import BREACH, MonitoringStore
from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.steps import current_step, headline
from bot.rollback.store import RollbackStore
from bot.runbook.model import Runbook
from bot.storage.db import as_utc
from bot.storage.models import Approval, AuditEvent, OutboxRow
from bot.text import safe, when

log = logging.getLogger("opsbot.home")

MAX_PENDING = 200  # read at most this many open approvals; the view summarises past its own cut
LAST_ROLLBACK_FOR = timedelta(hours=24)  # the last rollback's outcome shows this long after it ended
DECISIONS_FOR = timedelta(minutes=15)  # a decision's outcome stays at the top of its decider's home this long
MAX_DECISIONS = 50
SHOWN_SCOPES = 15
SLACK_BEHIND = timedelta(seconds=30)  # a message queued longer than this means Slack is not taking them


@dataclass(frozen=True)
class HomeParts:
    """What the App Home reads: the cutover (and its gate), the outbox, the backend, the store."""

    cutover: CutoverService
    outbox: Outbox
    backend: TradingBackend
    runbook: Runbook
    engine: Engine
    audit: AuditLog
    actions: Mapping[str, ActionSpec]
    clock: Callable[[], datetime]


class HomeSource:
    def __init__(self, parts: HomeParts) -> None:
        self.parts = parts
        self.cutover = parts.cutover
        self.rollbacks = RollbackStore(parts.engine, parts.audit)
        self.monitoring = MonitoringStore(parts.engine, parts.audit)

    def facts(self) -> HomeFacts:
        now = self.parts.clock()
        version, problem = self.cutover.gate.deployed_version("app-home", source="app home")
        stage, checklist = self._stage(version, problem)
        return HomeFacts(
            now=now,
            stage=stage,
            checklist=checklist,
            gate=self._gate(now, version),
            halt=self._halt(),
            rollback=self._rollback(now),
            monitoring=self._window(),
            approvals=self._approvals(now),
            alerts=self._alerts(),
            audit=self._audit(),
            decisions=self._decisions(now),
            slack=self._slack(),
        )

    def _slack(self) -> str | None:
        """Channel messages Slack is behind on (waiting over SLACK_BEHIND), and those given up on in the last day."""
        outbox = self.parts.outbox
        since = outbox.now()
        waiting = outbox.pending_count(created_before=since - SLACK_BEHIND)
        lost = outbox.given_up(since=since - timedelta(days=1))
        if not waiting and not lost:
            return None
        lines = (
            [
                f"*Slack:* {waiting} channel message{'s' if waiting != 1 else ''} waiting for Slack for over "
                f"{SLACK_BEHIND.seconds} s."
            ]
            if waiting
            else []
        )
        if lost:
            lines.append(f":warning: {len(lost)} never delivered (the audit log has each; the store is the truth):")
            lines += [_undelivered_line(r) for r in lost]
        return "\n".join(lines)

    def _stage(self, version: str | None, problem: str) -> tuple[str, str]:
        position = self.cutover.position()
        total = len(self.parts.runbook.stages)
        stage = f"*{position.index + 1} of {total}, {safe(position.stage.name, 100)}*"
        if position.entry is not None:
            stage += f" (since {when(position.entry.entered_at)})"
        if (rolled := self.cutover.rollback_warning(position, version)) is not None:
            stage += f"\n{rolled}"
        statuses = stage_statuses(self.parts.runbook, position.stage, self.cutover.gate.evidence(version, problem))
        done = [s for s in statuses if s.state in (CheckState.PASSED, CheckState.ATTESTED)]
        open_ = [f"`{s.item.id}` ({s.state.value})" for s in statuses if s not in done]
        checklist = f"{len(done)} of {len(statuses)} done"
        if open_:
            checklist += "; open: " + ", ".join(open_[:8]) + (f" and {len(open_) - 8} more" if len(open_) > 8 else "")
        return stage, checklist

    def _gate(self, now: datetime, deployed: str | None) -> str:
        recent = self.cutover.gate.store.recent(1)
        return gate_summary(evaluation_view(recent[0]) if recent else None, now, deployed)

    def _halt(self) -> str:
        try:
            control = self.parts.backend.trading_control(request_id="app-home").data
        except BackendError as exc:
            return f"*Halt state:* unknown: {exc.operator_text()}"  # already escaped mrkdwn
        g = control.global_
        head = (
            f":octagonal_sign: *Global: HALTED* ({safe(g.reason or 'no reason given', 200)})"
            if g.halted
            else ":large_green_circle: *Global: trading*"
        )
        disabled = [s.scope for s in control.scopes if s.disabled]
        if not disabled:
            return f"{head} · scoped disables: none"
        shown = ", ".join(f"`{safe(s, 80)}`" for s in disabled[:SHOWN_SCOPES])
        more = f" and {len(disabled) - SHOWN_SCOPES} more" if len(disabled) > SHOWN_SCOPES else ""
        return f"{head} · scoped disables ({len(disabled)}): {shown}{more}"

    def _rollback(self, now: datetime) -> str | None:
        row = self.rollbacks.running()
        if row is not None:
            return f"{headline(row)}\n*Step:* `{current_step(row.steps)}` · `/rollback status` for every step"
        failed = self.rollbacks.open_failed()
        if failed:
            return f"{headline(failed[0])}\n:ice_cube: It holds the cutover freeze until a rollback completes."
        last = self.rollbacks.latest()
        ended = (last.closed_at or last.finished_at) if last is not None else None
        if last is None or ended is None or as_utc(ended) < now - LAST_ROLLBACK_FOR:
            return None
        return f"*Rollback:* none active. {last_rollback_line(last, as_utc(ended))}"

    def _window(self) -> str:
        window = self.monitoring.current_window()
        if window is None:
            return "no window open (one opens after each cutover advance)."
        try:
            stage = self.parts.runbook.stage(window.stage_id).name
        except KeyError:
            stage = window.stage_id
        return (
            f"watching since the move to *{safe(stage, 100)}*: immediate signals until "
            f"{when(as_utc(window.immediate_until))}, first-24-hours signals until {when(as_utc(window.ends_at))}."
        )

    def _approvals(self, now: datetime) -> list[PendingApproval]:
        with Session(self.parts.engine, expire_on_commit=False) as session:
            query = select(Approval).where(
                col(Approval.status).in_([s.value for s in OPEN]), col(Approval.expires_at) > now
            )
            rows = list(session.exec(query.order_by(col(Approval.created_at).desc()).limit(MAX_PENDING)))
        out = []
        for row in rows:
            role = Role(row.approve_role)
            out.append(
                PendingApproval(
                    row.id,
                    self._title(row),
                    row.requester,
                    role.value,
                    ROLE_NAMES[role],
                    as_utc(row.expires_at),
                    row.channel,
                    confirming=row.status == Status.AWAITING_CONFIRMATION.value,
                    reason=str(params_of(row).get("reason") or ""),
                    request_id=row.request_id,
                )
            )
        return out

    def _decisions(self, now: datetime) -> list[Decision]:
        """Approvals decided in the last DECISIONS_FOR, newest first: each decider sees theirs on top."""
        with Session(self.parts.engine, expire_on_commit=False) as session:
            # Not a break-glass halt's own requester (recorded as its decider): theirs is not a decision on a request.
            query = select(Approval).where(
                col(Approval.decided_by).is_not(None),
                col(Approval.decided_by) != col(Approval.requester),
                col(Approval.decided_at) >= now - DECISIONS_FOR,
            )
            rows = list(session.exec(query.order_by(col(Approval.decided_at).desc()).limit(MAX_DECISIONS)))
        return [
            Decision(
                row.id,
                self._title(row),
                str(row.decided_by),
                as_utc(row.decided_at or now),
                row.status,
                row.outcome if row.status == Status.FAILED.value else "",
            )
            for row in rows
        ]

    def _title(self, row: Approval) -> str:
        spec = self.parts.actions.get(row.action)
        return spec.title(params_of(row)) if spec else row.action

    def _alerts(self) -> list[AlertLine]:
        signals = {s.id: s for s in self.parts.runbook.signals()}
        rolled = self.rollbacks.last_completed()
        closed = as_utc(rolled.closed_at) if rolled is not None and rolled.closed_at is not None else None
        out = []
        for alert in self.monitoring.open_alerts():
            signal = signals.get(alert.signal_id)
            if alert.kind == BREACH and signal is not None:
                text = f"*{safe(signal.name, 120)}*: {against(signal, alert.value)}"
            else:
                text = ":warning: *monitoring degraded*: some signals cannot be evaluated"
            since = as_utc(alert.since)
            before = ""
            if alert.not_fixed_by:
                before = f"not fixed by rollback `{safe(alert.not_fixed_by, 32)}`"
            elif rolled is not None and closed is not None and since < closed:
                before = f"still open after rollback `{safe(rolled.id, 32)}`"
            out.append(AlertLine(alert.id, text, since, alert.trigger, before))
        return out

    def _audit(self) -> list[AuditLine]:
        try:
            with Session(self.parts.engine) as session:
                rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(10))
                return [AuditLine(r.seq, as_utc(r.at), r.user_id, r.action, r.outcome) for r in rows]
        except OpsbotError:
            return []


def _undelivered_line(row: OutboxRow) -> str:
    about = (
        f" for approval `{safe(row.stream.removeprefix('approval:'), 64)}`"
        if row.stream.startswith("approval:")
        else ""
    )
    return f"• `{METHOD[row.kind]}` in <#{safe(row.channel, 32)}>{about}: {safe(row.error, 120)}"


def last_rollback_line(row: Rollback, ended: datetime) -> str:
    """How the last rollback ended (mrkdwn, safe): completed, or failed and at which step."""
    move = f"{abbrev(row.deployed)} → {abbrev(row.target)}"
    if row.status == RollbackStatus.COMPLETED.value:
        outcome = f":white_check_mark: *completed* at {when(ended)}"
    else:
        outcome = f":x: *failed* at step `{safe(row.failed_step or '?', 40)}` at {when(ended)}"
        if row.closed_by:
            outcome += f" (closed by `{safe(row.closed_by, 32)}`)"
    return (
        f"Last rollback `{safe(row.id, 32)}` ({move}) {outcome} (requested by <@{safe(row.requester, 32)}>, "
        f"approved by <@{safe(row.approver, 32)}>)."
    )
