"""Resuming warns and `/halt status` names the people behind each halt, end to end over signed requests:
a resume request lists the open hard-trigger alerts and recent kill-switch misfires on its card and in the
approver's confirm dialog; a break-glass confirmation does not read as halting again."""

from __future__ import annotations

from typing import Any

from rehearsal.sim.stack import Stack
from tests.e2e.test_gate_attestation import halt_not_applied, open_breach
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    HALT_C,
    OPERATOR,
    approval_id_of,
    click,
    request_halt,
    text_of,
    wait_until,
)


def confirm_of(posted: dict[str, Any]) -> dict[str, Any]:
    for block in posted.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "approve":
                return dict(element["confirm"])
    raise AssertionError("no approve button")


def halt_status(stack: Stack) -> str:
    before = len(stack.peer.calls_to("response_url"))
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    return text_of(stack.peer.wait_for_call("response_url", count=before + 1)[-1].args)


def test_a_resume_request_warns_of_open_alerts_and_misfires_on_the_card_and_in_the_dialog(stack: Stack) -> None:
    halt_not_applied(stack)  # a kill-switch misfire in the last hour
    stack.peer.wait_for_call("chat.postMessage", where=lambda c: "HALT NOT APPLIED" in text_of(c.args))  # told
    open_breach(stack, "platform-auth-failures", 785)
    open_breach(stack, "trading-control-update-failures", 3)
    _, posted = request_halt(stack, user=HALT_A, text="resume global auth looks fine to me")
    card = text_of(posted.args)
    assert "2 monitoring alerts with hard rollback triggers are open: platform auth failures: 785" in card
    assert "1 kill-switch misfire in the last 60 min" in card
    dialog = confirm_of(posted.args)
    assert dialog["title"]["text"] == "Resume all trading?"
    said = dialog["text"]["text"]
    assert "2 monitoring alerts with hard rollback triggers are open" in said and "Approving re-enables" in said
    assert len(said) <= 300


def test_a_quiet_resume_says_plainly_what_approving_does(stack: Stack) -> None:
    _, posted = request_halt(stack, user=HALT_A, text="resume tenant:acme fixed the config")
    assert "hard rollback trigger" not in text_of(posted.args)
    dialog = confirm_of(posted.args)
    assert dialog["title"]["text"] == "Resume tenant:acme?"
    assert dialog["text"]["text"].startswith("Approving re-enables tenant:acme now.")


def test_halt_status_names_who_requested_and_approved_each_halt(stack: Stack) -> None:
    approval_id, posted = request_halt(stack, user=OPERATOR, text="global fat-finger storm")
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    wait_until(lambda: stack.backend.control()["global"]["halted"] is True, timeout=10)
    stack.sender.command(user=HALT_B, command="/halt", text="tenant:acme leaking orders --now", channel=CHANNEL)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Confirm halt" in str(c.args.get("blocks")))[-1]
    scoped = approval_id_of(update)
    dialog = confirm_of(update.args)
    assert dialog["title"]["text"] == "Confirm the break-glass halt?"
    assert "already halted" in dialog["text"]["text"] and "nothing is sent to the backend" in dialog["text"]["text"]

    shown = halt_status(stack)
    assert f"requested by <@{OPERATOR}>, approved by <@{HALT_A}>, approval `{approval_id}`" in shown
    assert f"break-glass by <@{HALT_B}>, awaiting a second halt authority's confirmation" in shown
    click(stack, user=HALT_C, approval_id=scoped, posted=stack.peer.calls_to("chat.postMessage")[-1])
    wait_until(
        lambda: (row := stack.deps.approvals.get(approval_id=scoped)) is not None and row.status == "confirmed",
        timeout=10,
    )
    assert f"break-glass by <@{HALT_B}>, confirmed by <@{HALT_C}>, approval `{scoped}`" in halt_status(stack)
