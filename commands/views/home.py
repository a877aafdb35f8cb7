"""The App Home view, pure: the bot's state as one person sees it, within Slack's limits.

Sections: the outcome of this person's last decision (at the top, for a while after it), the cutover
stage and its checklist progress, the last gate verdict and its age (and whether it was for the deployed
version), the halt state and scopes, the approvals this person may act on (with their reason, request id
and buttons), the active rollback and its
step (else the last one, for a day after it closed), active monitoring alerts (marked when they began
before the last completed rollback closed), and the last 10 audit events. Long lists are cut to a few entries and
summarised ("…and 37 more"), so the view stays under 100 blocks and 250 kB whatever the backlog;
`home_view` validates the result with slack_sdk's View model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.home.model import AlertLine, AuditLine, Decision, HomeFacts, PendingApproval
from bot.text import clip, safe, when

MAX_BLOCKS = 100  # Slack's limit for a view
MAX_BYTES = 250_000  # Slack's limit for a view's JSON
SHOWN_APPROVALS = 10
SHOWN_ALERTS = 10
SHOWN_SCOPES = 15
SHOWN_AUDIT = 10
SHOWN_REASON = 300  # characters of a pending request's reason
SECTION_BUDGET = 2900  # of a section's 3000 characters, leaving room for the "…and N more" line
HOME_APPROVE, HOME_REJECT = "home.approve", "home.reject"


def actionable(facts: HomeFacts, viewer: str, roles: frozenset[str]) -> list[PendingApproval]:
    """The approvals `viewer` may approve: not their own, and they hold the role it needs."""
    return [a for a in facts.approvals if a.requester != viewer and a.approve_role in roles]


def home_view(
    facts: HomeFacts,
    *,
    viewer: str,
    roles: frozenset[str],
    notice: str | None = None,
    approvals: int = SHOWN_APPROVALS,
    alerts: int = SHOWN_ALERTS,
) -> dict[str, object]:
    """The view for `viewer` (who holds `roles`); cut further until it fits Slack's limits."""
    while True:
        blocks = _blocks(facts, viewer, roles, notice, approvals, alerts)
        if len(blocks) <= MAX_BLOCKS:
            view = View(type="home", blocks=blocks)
            view.validate_json()  # raises on anything Slack would refuse
            body = view.to_dict()
            if len(json.dumps(body)) <= MAX_BYTES:
                return body
        if approvals == 0 and alerts == 0:
            raise ValueError("the App Home cannot be made to fit")
        approvals, alerts = max(0, approvals // 2), max(0, alerts // 2)


def _blocks(
    facts: HomeFacts, viewer: str, roles: frozenset[str], notice: str | None, approvals: int, alerts: int
) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Trading ops: release and incident runbook"))]
    if notice:
        blocks.append(_section(notice))
    decided = next((d for d in facts.decisions if d.decided_by == viewer), None)
    if decided is not None:
        blocks.append(_section(decision_line(decided)))
    blocks += [
        _section(f"*Cutover:* {facts.stage}\n*Checklist:* {facts.checklist}"),
        _section(facts.gate),
        _section(facts.halt),
        _section(f"*Monitoring:* {facts.monitoring}"),
    ]
    if facts.slack:
        blocks.append(_section(facts.slack))
    blocks += [
        DividerBlock(),
    ]
    blocks += _approvals(actionable(facts, viewer, roles), approvals)
    blocks += [DividerBlock(), _section(facts.rollback or "*Rollback:* none active.")]
    blocks += _alerts(facts.alerts, alerts)
    blocks += [DividerBlock(), _audit(facts.audit)]
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"Updated {when(facts.now)}; refreshed after every action.")])
    )
    return blocks


def decision_line(decision: Decision) -> str:
    icon = {
        "executed": ":white_check_mark:",
        "confirmed": ":white_check_mark:",
        "failed": ":x:",
        "rejected": ":no_entry_sign:",
        "disputed": ":rotating_light:",
    }.get(decision.status, ":gear:")
    line = (
        f"{icon} *Your decision* ({when(decision.decided_at)}) on *{safe(decision.title, 200)}* "
        f"(`{safe(decision.approval_id, 64)}`): it is now *{safe(decision.status, 40)}*."
    )
    if decision.status == "failed" and decision.outcome:
        line += f"\n{clip(decision.outcome, 300)}"  # the stored outcome is the bot's own, already escaped
    return line


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def _approvals(pending: list[PendingApproval], limit: int) -> list[Block]:
    if not pending:
        return [_section("*Approvals waiting for you:* none.")]
    blocks: list[Block] = [_section(f"*Approvals waiting for you ({len(pending)}):*")]
    for approval in pending[:limit]:
        what = "break-glass, executed: confirm or dispute" if approval.confirming else f"needs {approval.role_name}"
        reason = " ".join(approval.reason.split())  # one line, whatever was typed
        reason = safe(reason, SHOWN_REASON) if reason else "_none given_"
        request = f" · request `{safe(approval.request_id, 64)}`" if approval.request_id else ""
        blocks.append(
            _section(
                f"*{safe(approval.title, 200)}*\nRequested by <@{approval.requester}> in "
                f"<#{approval.channel}> · {what} · expires {when(approval.expires_at)}\n"
                f"*Reason:* {reason}\nApproval `{safe(approval.id, 64)}`{request}"
            )
        )
        blocks.append(_buttons(approval))
    if len(pending) > limit:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {len(pending) - limit} more; their requests are in the channels named above."
                    )
                ]
            )
        )
    return blocks


def _buttons(approval: PendingApproval) -> ActionsBlock:
    # The labels of the request message: a break-glass halt is confirmed or disputed.
    yes, no = ("Confirm halt", "Dispute") if approval.confirming else ("Approve", "Reject")
    if approval.confirming:
        title, said = (
            "Confirm the break-glass halt?",
            (f"{approval.title}: already halted. Confirming records that you agree; nothing is sent to the backend."),
        )
    else:
        title, said = f"Approve: {approval.title}", f"Approving runs this at once: {approval.title}."
    confirm = ConfirmObject(
        title=PlainTextObject(text=clip(title, 100)),
        text=MarkdownTextObject(text=safe(f"{said} Recorded in the audit log.", 300)),
        confirm=PlainTextObject(text=yes),
        deny=PlainTextObject(text="Cancel"),
        style="danger",
    )
    return ActionsBlock(
        block_id=f"home_{approval.id}"[:255],
        elements=[
            # As on the request message: the value is the opaque approval id and nothing else.
            ButtonElement(text=yes, action_id=HOME_APPROVE, value=approval.id, style="primary", confirm=confirm),
            ButtonElement(text=no, action_id=HOME_REJECT, value=approval.id, style="danger"),
        ],
    )


def _alerts(alerts: Sequence[AlertLine], limit: int) -> list[Block]:
    if not alerts:
        return [_section("*Active alerts:* none.")]
    lines = [f"*Active alerts ({len(alerts)}):*"]
    for alert in alerts[:limit]:
        trigger = f" · trigger `{alert.trigger}`" if alert.trigger else ""
        before = f" ({alert.before_rollback})" if alert.before_rollback else ""
        line = f"• {clip(alert.text, 200)} since {when(alert.since)}{trigger}{before} (`{alert.id}`)"
        if sum(len(x) + 1 for x in lines) + len(line) > SECTION_BUDGET:
            break
        lines.append(line)
    if len(alerts) > len(lines) - 1:
        lines.append(f"…and {len(alerts) - len(lines) + 1} more in the incident channel.")
    return [_section("\n".join(lines))]


def _audit(rows: Sequence[AuditLine]) -> SectionBlock:
    if not rows:
        return _section("*Recent audit events:* none yet.")
    lines = ["*Recent audit events:*"]
    for row in rows[:SHOWN_AUDIT]:
        who = f"<@{row.user_id}>" if row.user_id and row.user_id[:1] in "UW" else f"`{safe(row.user_id, 32)}`"
        lines.append(f"`{row.seq}` {when(row.at)} {who} `{safe(row.action, 64)}` {safe(row.outcome, 32)}")
    return _section("\n".join(lines))
