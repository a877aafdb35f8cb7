"""The approval flow: open a request, decide clicks, execute once. Decide, act, then tell: a claim goes
straight to the action, and every Slack effect is an outbox note committed with the state change it
follows (bot.approvals.outbox), delivered afterwards by the notifier. Expiry and crash recovery: bot.approvals.sweep."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.approvals.actions import ActionSpec, ExecutionContext, Outcome
from bot.approvals.errors import AlreadyHandled, ApprovalExpired, NotAllowed, UnknownApproval
from bot.approvals.machine import (
    Status,
    Transition,
    Verb,
    after_execution,
    decide,
    on_timeout,
    status_command,
)
from bot.approvals.messages import BROADCAST, after_text, card_note, outcome_note, status_text, thread_note
from bot.approvals.outbox import Note, payload_of
from bot.approvals.policy import Role
from bot.approvals.store import params_intact, params_of, view_of
from bot.audit import binding as audit_binding
from bot.audit import notes as audit_notes
from bot.audit.log import SYSTEM, Actor, Entry
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval, OutboxRow
from bot.text import safe
from commands.deps import Deps
from commands.refusals import classify

log = logging.getLogger("opsbot.flow")

# Waits before retrying to record an outcome the store refused. Each try already waits out SQLite's
# 5 s busy timeout, so three tries span about 16 s: a lock held by a burst passes, a dead store does not.
RECORD_RETRY_DELAYS_S = (0.5, 1.0)


def open_request(
    deps: Deps,
    *,
    spec: ActionSpec,
    params: dict[str, object],
    actor: Actor,
    channel: str,
    request_id: str,
    approve_role: Role,
    break_glass: bool = False,
    status: str | None = None,
    answer_to: str | None = None,
    approval_id: str | None = None,
    seen_key: str | None = None,
) -> Approval:
    """Store the request and queue its card in one transaction; Slack is told by the notifier.
    `answer_to` (the command's response_url) is where the requester hears if Slack refuses the card;
    `approval_id` and `seen_key` come from a break-glass that chose its id and checks replays (bot.halt.breakglass)."""
    if break_glass:
        status = status or f":gear: Break-glass by <@{actor.user_id}>: executing now…"
    row = deps.approvals.create(
        action=spec.name,
        params=params,
        actor=actor,
        approve_role=approve_role.value,
        channel=channel,
        request_id=request_id,
        ttl_seconds=deps.settings.approval_ttl_seconds,
        now=deps.now(),
        break_glass=break_glass,
        approval_id=approval_id,
        seen_key=seen_key,
        notes=lambda r: [
            replace(
                card_note(deps, r, status=status, buttons=not break_glass, kind="post"),
                extra={"answer_to": answer_to} if answer_to else {},
            )
        ],
    )
    deps.metrics.approvals.labels(spec.name, "break_glass" if break_glass else "requested").inc()
    return row


def card_refused(deps: Deps, row: OutboxRow, error: str) -> None:
    """Slack will never take this approval's card: a request nobody can see must not stay approvable,
    and the requester is told why and how to fix it (a break-glass ran anyway: they get its outcome)."""
    if not row.stream.startswith("approval:"):
        return
    approval = deps.approvals.get(approval_id=row.stream.removeprefix("approval:"))
    if approval is None:
        return
    refusal = classify(error, channel=approval.channel)
    deps.audit.record(
        Entry(
            SYSTEM,
            f"{approval.action}.slack_refused",
            "failed",
            {"error": refusal.error, "permanent": refusal.permanent},
            approval.request_id,
            approval.id,
            approval.channel,
            refusal.text,
        )
    )
    if approval.status == Status.PENDING.value:
        transition = Transition(Status.PENDING, Status.REJECTED, "cancelled", executes=False)
        deps.approvals.apply(
            row=approval, transition=transition, actor=SYSTEM, now=deps.now(), request_id=approval.request_id
        )
        told = "The request was cancelled and nothing was done. Fix that, then try again."
    else:
        told = (
            f"{approval.outcome or 'It ran.'}\nTell the channel yourself, and ask a second halt authority to "
            f"confirm (approval `{approval.id}`)."
        )
    url = str(payload_of(row).get("extra", {}).get("answer_to") or "")
    if url:
        text = (
            f":warning: Slack did not accept the bot's message: {refusal.text} {told} Request id "
            f"`{approval.request_id}`."
        )
        deps.approvals.outbox.enqueue([Note(f"answer:{approval.id}", "respond", approval.channel, text, url=url)])
    log.warning("approval %s: its card was refused by Slack (%s)", approval.id, refusal.error)


def decide_click(deps: Deps, *, approval_id: str, verb: Verb, actor: Actor, request_id: str) -> None:
    """Apply one button click. Raises a typed error for the clicker when it is refused."""
    row = deps.approvals.get(approval_id=approval_id)
    if row is None:
        raise UnknownApproval(approval_id)
    now = deps.now()
    try:
        transition = decide(view_of(row), actor=actor.user_id, verb=verb, now=now, directory=deps.directory)
    except ApprovalExpired:
        time_out(deps, row)
        raise
    except NotAllowed as exc:
        _refused(deps, row, actor, request_id, exc.reason)
        raise
    if not deps.approvals.apply(
        row=row,
        transition=transition,
        actor=actor,
        now=now,
        request_id=request_id,
        notes=lambda r: _decided_notes(deps, r, transition, actor.user_id),
    ):
        latest = deps.approvals.get(approval_id=approval_id) or row
        view = view_of(latest)
        raise AlreadyHandled(view.status.value, view.decided_by, view.decided_at)
    # Claimed (the row is up to date in memory): straight to the backend, nothing read or posted first.
    if transition.executes:
        execute(deps, row, approver=actor.user_id, request_id=request_id)
    deps.metrics.approvals.labels(row.action, transition.audit_action).inc()
    if transition.to_status is Status.DISPUTED:
        escalated(deps, row, why=f"disputed by <@{actor.user_id}>")


def _decided_notes(deps: Deps, row: Approval, transition: Transition, by: str) -> list[Note]:
    if transition.executes:
        return [card_note(deps, row, status=f":gear: Approved by <@{by}>; executing…", buttons=False)]
    notes = [card_note(deps, row, status=status_text(row, by))]
    if transition.to_status is Status.DISPUTED:
        notes.append(escalation_note(deps, row, why=f"disputed by <@{by}>"))
    return notes


def _refused(deps: Deps, row: Approval, actor: Actor, request_id: str, reason: str) -> None:
    entry = Entry(
        actor,
        f"{row.action}.approval_refused",
        "denied",
        {"approval_id": row.id},
        request_id,
        row.id,
        row.channel,
        reason,
    )
    deps.audit.record(entry)


def execute(deps: Deps, row: Approval, *, approver: str, request_id: str) -> Outcome:
    """Run a claimed (executing) approval and record where it ends up, with its Slack notes."""
    spec = deps.actions[row.action]
    unbound = audit_binding.check(deps, row)  # what runs is what the audit chain recorded at the request
    if unbound:
        outcome = audit_binding.refused(deps, row, approver=approver, request_id=request_id, why=unbound)
    elif not params_intact(row):
        outcome = Outcome(
            False,
            ":no_entry: The stored request does not match what was approved; not run.",
            "failed",
            detail="params hash mismatch",
        )
    else:
        ctx = ExecutionContext(row.id, params_of(row), row.requester, approver, request_id)
        with keep_lease(deps, row):
            outcome = spec.execute(ctx)
    now = deps.now()
    target = after_execution(
        break_glass=row.break_glass,
        succeeded=outcome.applied,
        retryable=outcome.retryable,
        ttl_left=now < view_of(row).expires_at,
    )
    recorded = _record(deps, row, target, Actor(row.team_id, approver), now, request_id, outcome)
    if not recorded:  # None: the store refused it; False: another replica resumed or closed it first
        return (
            _unrecorded(deps, row, approver, outcome)
            if recorded is None
            else _late(deps, row, approver, outcome, request_id)
        )
    deps.metrics.approvals.labels(row.action, outcome.audit_outcome).inc()
    # Sign the chain's head now and show it on the card, a witness outside the database (README "Audit log").
    audit_notes.after_execution(
        deps,
        row,
        status=after_text(row, approver, outcome, target, at=now),
        buttons=None if target is not Status.FAILED else False,
        unbound=unbound,
    )
    if row.break_glass and target is Status.FAILED and outcome.uncertain:  # may have halted, unconfirmed
        escalated(deps, row, why="failed with an unknown outcome: it may have applied with nobody confirming it")
    return outcome


def _outcome_notes(
    deps: Deps, row: Approval, approver: str, outcome: Outcome, target: Status, at: datetime
) -> list[Note]:
    notes = [
        card_note(
            deps,
            row,
            status=after_text(row, approver, outcome, target, at=at),
            buttons=None if target is not Status.FAILED else False,
        ),
        outcome_note(row, approver, outcome),
    ]
    if row.break_glass and target is Status.FAILED and outcome.uncertain:
        notes.append(
            escalation_note(
                deps, row, why="failed with an unknown outcome: it may have applied with nobody confirming it"
            )
        )
    return notes


@contextmanager
def keep_lease(deps: Deps, row: Approval) -> Iterator[None]:
    """Renew our lease while the action runs, so no sweep resumes an execution that is alive."""
    stop = threading.Event()
    period = deps.approvals.lease.total_seconds() / 3

    def renew() -> None:
        while not stop.wait(period):
            try:
                deps.approvals.renew(approval_id=row.id, now=deps.now())
            except StoreUnavailable as exc:
                log.warning("could not renew the lease of %s: %s", row.id, exc)

    threading.Thread(target=renew, name=f"opsbot-lease-{row.id[-6:]}", daemon=True).start()
    try:
        yield
    finally:
        stop.set()


def _record(
    deps: Deps, row: Approval, target: Status, actor: Actor, now: datetime, request_id: str, outcome: Outcome
) -> bool | None:
    """True: recorded; False: a sweep closed it meanwhile; None: the store refused every try."""
    for delay in (*RECORD_RETRY_DELAYS_S, None):
        try:
            return deps.approvals.finish(
                row=row,
                to_status=target,
                actor=actor,
                now=now,
                request_id=request_id,
                outcome=outcome.summary,
                audit_outcome=outcome.audit_outcome,
                detail=outcome.detail,
                uncertain=outcome.uncertain,
                notes=lambda r: _outcome_notes(deps, r, actor.user_id, outcome, target, now),
            )
        except StoreUnavailable as exc:
            log.warning("could not record the outcome of %s: %s", row.id, exc)
            if delay is None:
                return None
            time.sleep(delay)
    return None


def _unrecorded(deps: Deps, row: Approval, approver: str, outcome: Outcome) -> Outcome:
    """The action ran but the store will not take its result: say so, never "nothing was done"."""
    log.error("outcome %s of approval %s NOT recorded; a sweep marks it interrupted", outcome.audit_outcome, row.id)
    deps.metrics.approvals.labels(row.action, "unrecorded").inc()
    who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
    text = (
        f"{who}. {outcome.summary}\n:warning: *Outcome NOT recorded:* the bot's store is unavailable, so "
        f"this is not in the audit log yet. Once the store answers, the bot re-sends it with the same "
        f"idempotency key (the backend applies it at most once) and records the outcome. Until then check "
        f"`{status_command(row.action)}` before acting again."
    )
    note = card_note(deps, row, status=text, buttons=False)
    try:
        deps.approvals.outbox.enqueue([note])
    except StoreUnavailable:
        _tell_directly(deps, row, note)
    return replace(outcome, summary=text)


def _tell_directly(deps: Deps, row: Approval, note: Note) -> None:
    """The outbox lives in the store: when the store will not take even the note, say it straight to
    Slack, once and best-effort. The action already ran; nothing waits on this."""
    try:
        if row.message_ts:
            deps.slack.chat_update(channel=row.channel, ts=row.message_ts, text=note.text, blocks=note.blocks)
        else:
            deps.slack.chat_postMessage(channel=row.channel, text=note.text, blocks=note.blocks)
    except (SlackApiError, OSError) as exc:
        log.error("approval %s: the store is down and Slack did not take the note either: %s", row.id, exc)


def _late(deps: Deps, row: Approval, approver: str, outcome: Outcome, request_id: str) -> Outcome:
    """Our outcome arrived after another replica resumed and recorded this approval, or closed it."""
    try:
        latest = deps.approvals.get(approval_id=row.id) or row
    except StoreUnavailable:  # say what came back all the same
        latest = row
    log.warning("approval %s finished here after it was marked %s elsewhere", row.id, latest.status)
    try:
        deps.audit.record(
            Entry(
                Actor(row.team_id, approver),
                f"{row.action}.outcome_late",
                outcome.audit_outcome,
                params_of(row),
                request_id,
                row.id,
                row.channel,
                outcome.detail,
            )
        )
    except StoreUnavailable:
        log.exception("could not audit the late outcome of %s", row.id)
    if latest.status != Status.FAILED.value:  # a resume recorded it: the channel heard from that one
        return outcome
    text = (
        f"{outcome.summary}\n:information_source: This result arrived after the request had been marked "
        f"{latest.status}; check `{status_command(row.action)}`."
    )
    try:
        deps.approvals.outbox.enqueue([thread_note(latest, text, broadcast=row.action in BROADCAST)])
    except StoreUnavailable:
        log.exception("could not queue the late outcome of %s", row.id)
    return replace(outcome, summary=text)


def time_out(deps: Deps, row: Approval) -> None:
    """Expire a request, or escalate an unconfirmed break-glass, once (conditional UPDATE)."""
    now = deps.now()
    transition = on_timeout(view_of(row), now=now)
    if transition is None:
        return
    why = "not confirmed within the TTL"

    def notes(r: Approval) -> list[Note]:
        card = card_note(deps, r, status=status_text(r, SYSTEM.user_id))
        return [card, escalation_note(deps, r, why=why)] if transition.to_status is Status.ESCALATED else [card]

    if not deps.approvals.apply(
        row=row, transition=transition, actor=SYSTEM, now=now, request_id=row.request_id, timed_out=True, notes=notes
    ):
        return
    deps.metrics.approvals.labels(row.action, transition.audit_action).inc()
    if transition.to_status is Status.ESCALATED:
        escalated(deps, row, why=why)


def escalation_note(deps: Deps, row: Approval, *, why: str) -> Note:
    holders = " ".join(f"<@{u}>" for u in sorted(deps.directory.holders(Role.HALT_AUTHORITY)))
    title = safe(deps.actions[row.action].title(params_of(row)), 150)
    text = (
        f":rotating_light: *Escalation:* break-glass `{title}` by <@{row.requester}> was {why}. "
        f"{holders or 'No halt authorities are configured.'} please review. The bot never resumes on its own."
    )
    return thread_note(row, text, broadcast=True)


def escalated(deps: Deps, row: Approval, *, why: str) -> None:
    """Audit an escalation queued with its state change (its delivery is the notifier's)."""
    deps.audit.record(
        Entry(SYSTEM, f"{row.action}.escalation_posted", "accepted", {"why": why}, row.request_id, row.id, row.channel)
    )


def sweep(deps: Deps) -> int:
    """Time out what is due and resume lapsed executions (bot.approvals.sweep)."""
    from bot.approvals.sweep import sweep as run  # that module builds on this one

    return run(deps)
