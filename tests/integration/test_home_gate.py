"""The App Home after a rollback: a last gate for another version than the one deployed says so, and a
pending request shows its reason (escaped, bounded) and its request id, so approving there is not blind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cutover.words import gate_summary
from bot.gate.composite import EvaluationView
from bot.gate.engine import GateVerdict
from bot.home.model import HomeFacts, PendingApproval
from commands.views.home import SHOWN_REASON, home_view
from rehearsal.workspace.world import DEPLOYED, PREVIOUS
from tests.support.common import text_of
from tests.support.workspace import HALT_B, OPERATOR, eventually, running_workspace

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GATE_S = 30


def gate(version: str | None, verdict: GateVerdict = GateVerdict.GO) -> EvaluationView:
    return EvaluationView(
        id="gate_1",
        started_at=NOW - timedelta(minutes=3),
        version=version,
        verdict=verdict,
        requested_by=OPERATOR,
        request_id="req-1",
        outcomes=(),
    )


def test_a_gate_for_another_version_than_the_deployed_one_says_so() -> None:
    stale = gate_summary(gate("def5678aa"), NOW, "abc1234ff")
    assert stale.startswith("*Last gate:* *GO* (`gate_1`, 3 min ago, for backend `def5678aa`")
    assert ", *NOT the deployed* `abc1234ff`: run `/gate`" in stale and stale.endswith(f"by <@{OPERATOR}>)")
    assert "NOT the deployed" not in gate_summary(gate("abc1234ff"), NOW, "abc1234ff")
    assert "NOT the deployed" not in gate_summary(gate("abc1234"), NOW, "ABC1234ffee")  # an abbreviation of it
    assert "NOT the deployed" in gate_summary(gate("abc"), NOW, "abc1234ffee")  # too short to be one
    assert "NOT the deployed" in gate_summary(gate(None), NOW, "abc1234ffee")  # a gate that never knew
    assert "NOT the deployed" not in gate_summary(gate("def5678aa"), NOW, None)  # deployed unknown: no claim
    odd = gate_summary(gate("def5678aa"), NOW, "<!channel> v2")
    assert "`&lt;!channel&gt; v2`" in odd and "<!channel>" not in odd


def facts_with(reason: str) -> HomeFacts:
    pending = PendingApproval(
        "apr-1",
        "Halt trading: global",
        "UREQ",
        "halt_authority",
        "a halt authority",
        NOW + timedelta(minutes=15),
        "C1",
        reason=reason,
        request_id="req-77",
    )
    return HomeFacts(
        now=NOW, stage="s", checklist="c", gate="g", halt="h", rollback=None, monitoring="m", approvals=[pending]
    )


def test_a_pending_request_shows_its_reason_escaped_and_bounded_and_its_request_id() -> None:
    long = "<!channel> *orders* stuck\nfor tenant acme " + "x" * 2000
    shown = text_of(
        {"blocks": home_view(facts_with(long), viewer=HALT_B, roles=frozenset({"halt_authority"}))["blocks"]}
    )
    line = next(line for line in shown.splitlines() if line.startswith("*Reason:*"))
    assert line.startswith("*Reason:* &lt;!channel&gt; *orders* stuck for tenant acme xxx")  # one line
    assert "<!channel>" not in shown and line.endswith("…") and len(line) <= len("*Reason:* ") + SHOWN_REASON
    assert "Approval `apr-1` · request `req-77`" in shown
    blank = text_of(
        {"blocks": home_view(facts_with("  "), viewer=HALT_B, roles=frozenset({"halt_authority"}))["blocks"]}
    )
    assert "*Reason:* _none given_" in blank


def test_after_a_rollback_the_home_warns_that_the_last_gate_was_for_another_version(tmp_path: Path) -> None:
    with running_workspace(tmp_path, use_cosmos=False, use_prometheus=False) as ws:
        ws.command(OPERATOR, "/gate")
        ws.find(OPERATOR, "Release go/no-go: NO-GO for backend", ephemeral=False, timeout=GATE_S)

        def home() -> str:
            doc = ws.state(OPERATOR)["home"]
            return text_of({"blocks": doc["blocks"]}) if doc else ""

        ws.post("/api/home", {"user": OPERATOR})
        current = eventually(
            lambda: next((line for line in home().splitlines() if "*Last gate:*" in line), None),
            what="the last gate on the home",
        )
        assert f"for backend `{DEPLOYED}`" in current and "NOT the deployed" not in current
        ws.session.world.deploy(PREVIOUS)  # what a completed rollback leaves running
        ws.post("/api/home", {"user": OPERATOR})
        stale = eventually(
            lambda: next((line for line in home().splitlines() if "NOT the deployed" in line), None),
            what="the warning on the home",
        )
        assert f"for backend `{DEPLOYED}`, *NOT the deployed* `{PREVIOUS}`: run `/gate`" in stale
