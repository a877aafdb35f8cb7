"""Halting and resuming trading through the backend, with a read-back that proves the change applied."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.approvals.actions import ExecutionContext, Outcome
from bot.clients.backend import Reply, TradingBackend, TradingControl
from bot.clients.backend_errors import BackendError, backend_audit_detail, may_have_applied
from bot.text import safe, when

TRIGGER_3 = (
    "hard rollback trigger 3 of the runbook: *global trade halt or scoped disable controls do not apply correctly*"
)


def describe_scope(scope: str) -> str:
    return "all trading (global)" if scope == "global" else f"`{safe(scope, 80)}`"


@dataclass
class ControlSpec:
    """Halt or resume of one scope; `halting` says which."""

    backend: TradingBackend
    halting: bool

    @property
    def name(self) -> str:
        return "halt" if self.halting else "resume"

    def title(self, params: Mapping[str, Any]) -> str:
        verb = "Halt trading" if self.halting else "Resume trading"
        return f"{verb}: {params['scope']}"

    def effect(self, params: Mapping[str, Any]) -> str:
        scope = describe_scope(str(params["scope"]))
        call = "POST /api/trading-control/" + self.name
        if self.halting:
            return f"{scope} is halted: the bot calls `{call}` once, then reads the control state back."
        said = f"{scope} is re-enabled: the bot calls `{call}` once, then reads the control state back."
        warnings = [safe(str(w), 600) for w in params.get("warnings") or []]
        return "\n".join([said, *warnings]) if warnings else said

    def confirm(self, params: Mapping[str, Any]) -> tuple[str, str]:
        """The approver's confirm dialog: what the click does, and for a resume what argues against it."""
        scope = str(params["scope"])
        where = "all trading" if scope == "global" else scope
        if self.halting:
            return f"Halt {where}?", f"Approving halts {where} now (one backend call, then a read-back)."
        warned = [_plain_warning(str(w)) for w in params.get("warnings") or []]
        text = f"Approving re-enables {where} now"
        if warned:
            return f"Resume {where}?", f"{text}, although: {'; '.join(warned)} (listed on the request)."
        return f"Resume {where}?", f"{text}."

    def execute(self, ctx: ExecutionContext) -> Outcome:
        scope, reason = str(ctx.params["scope"]), str(ctx.params["reason"])
        # Stable across retries: a retry by another approver must send the same body under the same
        # Idempotency-Key, or the backend answers 409. Who approved is in the audit log.
        actor = f"slack:{ctx.requester} approval:{ctx.approval_id}"
        write = self.backend.halt if self.halting else self.backend.resume
        try:
            wrote = write(
                scope=scope,
                reason=reason,
                actor=actor,
                request_id=ctx.request_id,
                idempotency_key=f"{ctx.approval_id}:{self.name}",
            )
        except BackendError as exc:
            return self._write_failed(exc)
        try:
            readback = self.backend.trading_control(request_id=ctx.request_id)
        except BackendError as exc:
            return Outcome(
                False,
                f"*{self.name.capitalize()} sent, but the read-back failed*, so it is NOT "
                f"confirmed. {exc.operator_text()}\n{echo_text(wrote, 'Write')}",
                "unconfirmed",
                retryable=exc.retryable,
                uncertain=True,
                detail=f"{echo_detail(wrote, 'write')}; read-back failed: {backend_audit_detail(exc)}",
            )
        return self._judge(scope, wrote, readback)

    def _write_failed(self, exc: BackendError) -> Outcome:
        # Only say "NOT applied" when it surely was not: a timeout or 5xx may follow a committed change.
        if may_have_applied(exc):
            head = (
                f":warning: *{self.name.capitalize()} NOT confirmed:* the backend may have applied it; "
                f"`/halt status` shows the current state."
            )
        else:
            head = f"*{self.name.capitalize()} NOT applied.*"
        return Outcome(
            False,
            f"{head} {exc.operator_text()}",
            "failed",
            retryable=exc.retryable,
            detail="write failed: " + backend_audit_detail(exc),
            uncertain=may_have_applied(exc),
        )

    def _judge(self, scope: str, wrote: Reply[TradingControl], readback: Reply[TradingControl]) -> Outcome:
        applied = readback.data.is_halted(scope) == self.halting
        where = describe_scope(scope)
        rev = f"revision {readback.data.revision}"
        trace = f"{echo_text(wrote, 'Write')}; {echo_text(readback, 'read-back')}."
        detail = f"read-back {rev}; {echo_detail(wrote, 'write')}; {echo_detail(readback, 'read-back')}"
        if applied:
            state = "halted" if self.halting else "trading again"
            icon = ":octagonal_sign:" if self.halting else ":large_green_circle:"
            return Outcome(True, f"{icon} *Applied:* {where} is {state} ({rev}).\n{trace}", "applied", detail=detail)
        state = "still trading" if self.halting else "still halted"
        return Outcome(
            False,
            f":rotating_light: *{self.name.upper()} NOT APPLIED:* the backend accepted it but the read-back "
            f"shows {where} {state} ({rev}). This is {TRIGGER_3}. Escalate now and consider `/rollback "
            f"--trigger controls`.\n{trace}",
            "not_applied",
            detail=f"{detail}; shows {state}",
        )


def _plain_warning(line: str) -> str:
    """A warning's lead for the dialog (`2 monitoring alerts … are open`): no emoji, no stars, no list."""
    return re.sub(r"^:[a-z_]+: ", "", line).replace("*", "").split(": ")[0].rstrip(".")


def echo_text(reply: Reply[Any], call: str) -> str:
    """mrkdwn: the call's x-request-id and whether the backend echoed it (so its traces carry it)."""
    return f"{call}: request id `{safe(reply.request_id, 80)}` ({_echoed(reply)})"


def _echoed(reply: Reply[Any]) -> str:
    return "echoed" if reply.echoed else ":warning: NOT echoed by the backend"


def echo_detail(reply: Reply[Any], call: str) -> str:
    """Plain text of the same, for the audit row."""
    return f"{call} request id {reply.request_id} {'echoed' if reply.echoed else 'NOT echoed'}"


def status_text(reply: Reply[TradingControl], origins: Mapping[str, str] | None = None) -> str:
    """The control state; `origins` (scope -> who requested and approved, bot.halt_people) names the people."""
    control, people = reply.data, origins or {}
    g = control.global_
    if g.halted:
        by = people.get("global") or _by(g.updated_by)
        lines = [
            f":octagonal_sign: *Global: HALTED* — {safe(g.reason or 'no reason given', 300)} "
            f"({by} at {_at(g.updated_at)})"
        ]
    else:
        lines = [":large_green_circle: *Global: trading*"]
    disabled = [s for s in control.scopes if s.disabled]
    if disabled:
        lines.append(f"*Scoped disables ({len(disabled)}):*")
        lines += [
            f"• `{safe(s.scope, 80)}` — {safe(s.reason or 'no reason', 200)} (since {_at(s.updated_at)}"
            f"{'; ' + people[s.scope] if s.scope in people else ''})"
            for s in disabled[:30]
        ]
        if len(disabled) > 30:
            lines.append(f"…and {len(disabled) - 30} more")
    else:
        lines.append("*Scoped disables:* none")
    if control.maintenance_enabled:
        lines.append(f":construction: *Maintenance: on* — {safe(control.maintenance_message or '', 300)}")
    else:
        lines.append("*Maintenance:* off")
    lines.append(f"*Control revision:* {control.revision}")
    return "\n".join(lines)


# The actor the bot sends on writes (stable across approvers, so a retry replays rather than 409s).
_BOT_ACTOR = re.compile(r"^slack:([UW][A-Z0-9]{2,20}) approval:(apr_[A-Za-z0-9_-]{4,40})$")


def _by(updated_by: str | None) -> str:
    """Who changed the control: for the bot's own writes, the requester and the approval to look up."""
    found = _BOT_ACTOR.match(updated_by or "")
    if found:
        return f"requested by <@{found[1]}>, approval `{found[2]}`"
    return f"by {safe(updated_by or 'unknown', 80)}"


def _at(updated_at: str | None) -> str:
    try:
        return when(datetime.fromisoformat((updated_at or "").replace("Z", "+00:00")).astimezone(UTC))
    except ValueError:
        return safe(updated_at or "an unknown time", 40)


def trace_line(reply: Reply[Any]) -> str:
    return f"Request id `{safe(reply.request_id, 80)}` ({_echoed(reply)}), {reply.elapsed_ms:.0f} ms"
