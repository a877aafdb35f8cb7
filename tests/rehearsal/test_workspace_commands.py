"""Every command end to end in the local workspace, through its HTTP API, as the people in the switcher.

Break-glass halt and its confirmation, a resume, `/gate attest` and `/gate`, `/cutover status` and an
advance requested by one admin and approved by the other, `/rollback status`; and a workspace without
Cosmos, whose gate says Cosmos is not configured.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.workspace import (
    ADMIN,
    ADMIN_2,
    ATTESTED,
    GATE_S,
    HALT_A,
    HALT_B,
    OPERATOR,
    Running,
    everything,
    need_cosmos,
    running_workspace,
)


def halted(ws: Running) -> bool:
    return bool(ws.session.world.stack.backend.control()["global"]["halted"])


def test_break_glass_halt_is_confirmed_by_the_second_authority_and_resume_needs_the_other(ws: Running) -> None:
    ws.command(HALT_A, "/halt global break-glass rehearsal --now")
    card = ws.find(HALT_B, "Break-glass by <@UHALTA>: a second halt authority must confirm", ephemeral=False)
    assert halted(ws)  # at once, before anyone confirmed
    assert "*Applied:* all trading (global) is halted" in everything(card)
    assert ws.click(HALT_B, card).status_code == 200  # the button says "Confirm halt"
    confirmed = ws.find(HALT_B, "Break-glass confirmed by <@UHALTB>")
    assert confirmed["ts"] == card["ts"] and not any(b["type"] == "actions" for b in confirmed["blocks"])

    ws.command(HALT_A, "/halt resume global break-glass rehearsal over")
    request = ws.find(HALT_B, "break-glass rehearsal over", ephemeral=False)
    assert "Resume trading: global" in everything(request)
    assert halted(ws)  # a resume never runs without the second authority
    ws.click(HALT_A, request)
    ws.find(HALT_A, "you requested this action", ephemeral=True)
    assert halted(ws)
    assert ws.click(HALT_B, request).status_code == 200
    done = ws.find(HALT_B, "Approved by <@UHALTB>.")  # the card; its thread tells the outcome too
    assert done["ts"] == request["ts"] and "all trading (global) is trading again" in everything(done)
    told = ws.find(HALT_B, "approved by <@UHALTB>", ephemeral=False)
    assert told.get("thread_ts") == request["ts"] and "<@UHALTA>" in everything(told)
    assert not halted(ws)


def test_attested_go_gate_and_a_cutover_advance_approved_by_the_second_admin(ws: Running) -> None:
    need_cosmos(ws)
    for check in ATTESTED:
        ws.command(ADMIN, f"/gate attest {check} rehearsal evidence for {check}")
        ws.find(ADMIN, f"<@UADMIN> attested `{check}`", ephemeral=False)
    ws.command(OPERATOR, "/cutover status")
    before = ws.find(OPERATOR, "*Cutover: stage 1 of 5, Backend internal validation*", ephemeral=True)
    assert "*Last gate:* none yet" in everything(before)
    for check in ATTESTED[3:]:  # the stage's two attested checks
        assert f":memo: *attested* `{check}`" in everything(before)
    ws.command(OPERATOR, "/gate")
    gate = ws.find(OPERATOR, "Release go/no-go: GO for backend", ephemeral=False, timeout=GATE_S)
    assert "*GO*: every go condition passes" in everything(gate) and "UNKNOWN" not in everything(gate)

    ws.command(ADMIN, "/cutover advance backend validated in rehearsal")
    request = ws.find(ADMIN_2, "backend validated in rehearsal", ephemeral=False)
    assert "Backend internal validation → Web internal adoption" in everything(request)
    assert "Entry conditions hold now" in everything(request)
    ws.click(ADMIN, request)  # the requester cannot approve it
    ws.find(ADMIN, "you requested this action", ephemeral=True)
    assert ws.click(ADMIN_2, request).status_code == 200
    done = ws.find(ADMIN_2, "Approved by <@UADMIN2>")
    assert done["ts"] == request["ts"]
    ws.find(OPERATOR, "Rollout announcement", ephemeral=False)
    ws.command(OPERATOR, "/cutover status")
    ws.find(OPERATOR, "*Cutover: stage 2 of 5, Web internal adoption*", ephemeral=True)


def test_rollback_status_before_any_rollback(ws: Running) -> None:
    ws.command(OPERATOR, "/rollback status")
    status = ws.find(OPERATOR, "No rollback has run yet.", ephemeral=True)
    assert "Cutover: not frozen." in everything(status)
    assert all(m["ts"] != status["ts"] for m in ws.messages(HALT_A))  # only for the one who asked


def test_without_cosmos_the_gate_says_cosmos_is_not_configured(tmp_path: Path) -> None:
    with running_workspace(tmp_path, use_cosmos=False) as bare:
        assert not bare.state()["world"]["cosmos"]["running"]
        bare.command(OPERATOR, "/gate")
        card = bare.find(OPERATOR, "Release go/no-go: NO-GO for backend", ephemeral=False, timeout=GATE_S)
        shown = everything(card)
        for item in ("5. Cosmos control-plane reads and writes succeed", "6. Cosmos execution-data reads"):
            line = next(line for line in shown.splitlines() if item in line)
            assert "*UNKNOWN*" in line, line
        assert shown.count("Cosmos is not configured (COSMOS_ENDPOINT, COSMOS_KEY, COSMOS_DATABASE not set)") == 2
        assert "go-cosmos-control-plane, go-cosmos-execution-data" in shown  # named in the verdict
