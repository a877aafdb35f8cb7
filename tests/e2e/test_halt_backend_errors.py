"""What an operator is told, and what the audit log keeps, when the trading backend refuses or fails a
`/halt` call; and the x-request-id echo of the halt write and its read-back. Signed requests go through
the real Bolt app over HTTP, with the local Slack peer and the simulated backend's fault switches."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.audit.log import AuditLog
from bot.clients.backend import TradingBackend
from bot.clients.backend_errors import BackendRejected, BackendUnavailable, backend_audit_detail
from bot.clients.tokens import build_token_source
from bot.storage.models import AuditEvent
from commands.errors import operator_message
from rehearsal.sim import stack as stack_mod
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, HALT_A, OPERATOR, click, request_halt, text_of, wait_until

HALT_PATH = "/api/trading-control/halt"


@dataclass(frozen=True)
class Fault:
    status: int | None  # the simulated backend's fail_status; None: a timeout
    says: tuple[str, ...]  # what the operator must read, for both /halt status and the approved halt
    halt_head: str  # the approval message's verdict on the write
    ends: str  # the approval's status after the failed write
    audited: str  # the start of the audit detail


FAULTS = {
    "401": Fault(
        401,
        (
            "rejected the bot's own credentials",
            "HTTP 401",
            "`PLATFORM_SERVICE_TOKEN`",
            "`PLATFORM_TOKEN_URL`",
            "`OPSBOT_CLIENT_ID`/`OPSBOT_CLIENT_SECRET`",
            "`JWT_SECRET`",
        ),
        "Halt NOT applied.",
        "failed",
        "HTTP 401 (not retryable, not applied)",
    ),
    "403": Fault(
        403,
        ("the bot's identity lacks permission for this call", "HTTP 403", "retrying will not help"),
        "Halt NOT applied.",
        "failed",
        "HTTP 403 (not retryable, not applied)",
    ),
    "409": Fault(
        409,
        ("idempotency key was already used with a different request body", "HTTP 409", "start a new request"),
        "Halt NOT applied.",
        "failed",
        "HTTP 409 (not retryable, not applied)",
    ),
    "500": Fault(
        500,
        ("The trading backend failed (HTTP 500: simulated failure (HTTP 500))",),
        "Halt NOT confirmed:* the backend may have applied it",
        "pending",
        "HTTP 500 (retryable, may have applied)",
    ),
    "timeout": Fault(
        None,
        ("gave no usable answer (no answer: timed out",),
        "Halt NOT confirmed:* the backend may have applied it",
        "pending",
        "no HTTP answer (retryable, may have applied): timed out",
    ),
}


def break_backend(stack: Stack, fault: Fault) -> None:
    if fault.status is not None:
        stack.backend.faults.fail_status = fault.status
        return
    # A slow backend: the bot's client gets 0.3 s timeouts and the backend answers after 1 s.
    settings = stack.deps.settings
    client = TradingBackend(
        base_url=settings.trading_api_url,
        read_timeout_s=0.3,
        write_timeout_s=0.3,
        tokens=build_token_source(settings, stack.deps.http),
    )
    stack.deps.backend.close()
    stack.deps.backend = client
    for name in ("halt", "resume"):
        stack.deps.actions[name].backend = client  # type: ignore[attr-defined]
    stack.backend.faults.latency_s = 1.0


def assert_safe(shown: str) -> None:
    """No secret value, bearer token or traceback ever reaches Slack."""
    for secret in (stack_mod.CLIENT_SECRET, stack_mod.SIGNING_SECRET, stack_mod.BOT_TOKEN):
        assert secret not in shown
    assert "Bearer" not in shown and "eyJ" not in shown and "Traceback" not in shown


def audit_rows(audit: AuditLog, action: str) -> list[AuditEvent]:
    return [row for row in audit.rows() if row.action == action]


def status_answer(stack: Stack) -> str:
    before = len(stack.peer.calls_to("response_url"))
    response = stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    assert response.status_code == 200, response.text
    answer = stack.peer.wait_for_call("response_url", count=before + 1, timeout=10)[-1]
    assert answer.args.get("response_type") == "ephemeral"
    return text_of(answer.args)


@pytest.mark.parametrize("name", list(FAULTS))
def test_backend_fault_is_explained_to_the_operator_and_audited(stack: Stack, name: str) -> None:
    fault = FAULTS[name]
    approval_id, posted = request_halt(stack)  # posted while the backend is healthy
    break_backend(stack, fault)

    shown = status_answer(stack)
    for words in fault.says:
        assert words in shown, (words, shown)
    assert_safe(shown)
    read_id = stack.backend.calls("GET", "/api/trading-control")[-1].headers["x-request-id"]
    assert f"Request id `{read_id}`" in shown
    wait_until(lambda: len(audit_rows(stack.deps.audit, "halt.status_failed")) == 1)
    status_row = audit_rows(stack.deps.audit, "halt.status_failed")[0]
    assert status_row.outcome == "failed" and status_row.user_id == OPERATOR and status_row.request_id == read_id
    assert status_row.detail.startswith(fault.audited) and read_id in status_row.detail

    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: fault.halt_head in text_of(c.args), timeout=10)[-1]
    message = text_of(update.args)
    for words in fault.says:
        assert words in message, (words, message)
    assert_safe(message)
    assert ("Still pending" in message) == (fault.ends == "pending")
    wait_until(
        lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and row.status == fault.ends,
        timeout=10,
    )
    write_id = stack.backend.calls("POST", HALT_PATH)[-1].headers["x-request-id"]
    failed = [row for row in stack.deps.audit.for_approval(approval_id) if row.action == "halt.failed"]
    assert len(failed) == 1 and failed[0].outcome == "failed" and failed[0].user_id == HALT_A
    assert failed[0].detail.startswith(f"write failed: {fault.audited}") and write_id in failed[0].detail


@pytest.mark.parametrize("echo", [True, False])
def test_halt_outcome_shows_whether_write_and_read_back_echoed_the_request_id(stack: Stack, echo: bool) -> None:
    approval_id, posted = request_halt(stack)
    stack.backend.faults.echo_request_id = echo
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))[-1]
    write_id = stack.backend.calls("POST", HALT_PATH)[-1].headers["x-request-id"]
    read_id = stack.backend.calls("GET", "/api/trading-control")[-1].headers["x-request-id"]
    said = "echoed" if echo else ":warning: NOT echoed by the backend"
    shown = text_of(update.args)
    assert f"Write: request id `{write_id}` ({said})" in shown
    assert f"read-back: request id `{read_id}` ({said})" in shown
    wait_until(lambda: any(r.action == "halt.executed" for r in stack.deps.audit.for_approval(approval_id)))
    executed = next(r for r in stack.deps.audit.for_approval(approval_id) if r.action == "halt.executed")
    audited = "echoed" if echo else "NOT echoed"
    assert f"write request id {write_id} {audited}" in executed.detail
    assert f"read-back request id {read_id} {audited}" in executed.detail


def test_backend_error_text_is_escaped_and_tokens_redacted() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvcHNib3QifQ.c2lnbmF0dXJl"
    rejected = BackendRejected(f"<!channel> bad token Bearer {token} & more", request_id="r-1", status=401)
    message = operator_message(rejected)
    assert "&lt;!channel&gt;" in message and "&amp; more" in message and "<!channel>" not in message
    assert token not in message and "Bearer [redacted]" in message
    assert token not in backend_audit_detail(rejected)
    refused = BackendUnavailable("connection refused or unreachable", request_id="r-2", sent=False)
    assert "nothing was sent" in operator_message(refused)
    assert "(retryable, not applied)" in backend_audit_detail(refused)
