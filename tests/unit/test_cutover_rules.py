"""`/cutover advance` preconditions as a table: each missing precondition alone refuses, naming itself;
all of them holding allows. Also the stage check states from stored evidence."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.cutover.engine import CheckState, CheckStatus, StageEntry, check_status, stage_statuses
from bot.cutover.entry import DeployFacts, RollbackMark, Soak, real_deploys
from bot.cutover.rules import AdvanceFacts, blockers
from bot.gate.composite import EvaluationView, Evidence, VersionChange
from bot.gate.engine import AttestationView, GateVerdict, ItemOutcome, attestation_key, gate_items, item_outcome
from bot.gate.result import ProbeResult, Verdict, failed, passed, unknown
from bot.runbook.load import load_runbook

RUNBOOK = load_runbook()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
V1, V2 = "1111111", "2222222"
MAX_AGE = timedelta(hours=1)


def evaluation(
    version: str = V1,
    *,
    verdict: GateVerdict = GateVerdict.GO,
    minutes_ago: float = 5,
    override: dict[str, ProbeResult] | None = None,
    gate_id: str = "gate_go",
) -> EvaluationView:
    outcomes = tuple(
        ItemOutcome(i.id, s, i.text, i.probe, dict(i.params), (override or {}).get(i.id, passed("ok")))
        for s, i in gate_items(RUNBOOK)
    )
    return EvaluationView(gate_id, NOW - timedelta(minutes=minutes_ago), version, verdict, "UOP", "ops-1", outcomes)


def attestations(version: str = V1) -> dict[str, AttestationView]:
    return {
        item.id: AttestationView(item.id, version, "seen", "UADMIN", NOW - timedelta(minutes=1))
        for _, item in RUNBOOK.labelled_items()
        if item.kind == "attested"
    }


def evidence(**changes: object) -> Evidence:
    base = Evidence(V1, evaluation(), attestations(), NOW, MAX_AGE)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def facts(stage_id: str = "web-internal-adoption", **changes: object) -> AdvanceFacts:
    ev = changes.pop("evidence", None) or evidence()
    stage = RUNBOOK.stage(stage_id)
    base = AdvanceFacts(
        RUNBOOK,
        stage,
        stage_statuses(RUNBOOK, stage, ev),
        ev,
        evaluation(),  # type: ignore[arg-type]
        soak=Soak(NOW - timedelta(hours=3)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


BETA = StageEntry(3, "mobile-internal-beta", NOW - timedelta(days=2), V1)
DEPLOY = VersionChange(V2, V1, NOW - timedelta(days=1))


def deploy(**changes: object) -> DeployFacts:
    base = DeployFacts(BETA, (DEPLOY,), (DEPLOY,), (), (evaluation(V2),))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def at_rollout(**changes: object) -> AdvanceFacts:
    """Controlled operator rollout → Broader production cutover, with a deploy V1 → V2 since the beta began."""
    ev = evidence(version=V2, latest=evaluation(V2), attestations=attestations(V2))
    base = dict(evidence=ev, last_go=evaluation(V2), deploy=deploy())
    base.update(changes)
    return facts("controlled-operator-rollout", **base)


def test_allowed_when_everything_holds() -> None:
    assert blockers(facts()) == []
    assert blockers(at_rollout()) == []


Case = tuple[str, Callable[[], AdvanceFacts], str]
CASES: list[Case] = [
    ("rollback in progress", lambda: facts(freeze="rollback rb_1"), "rollback in progress"),
    (
        "stage check not attested",
        lambda: facts(evidence=evidence(attestations={})),
        "stage check `web-operators-moved` is pending",
    ),
    (
        "attested for another version",
        lambda: facts(evidence=evidence(attestations=attestations(V2))),
        "not attested for version 1111111",
    ),
    (
        "deployed version unknown",
        lambda: facts(evidence=evidence(version=None, version_problem="HTTP 503")),
        "deployed backend version unknown (HTTP 503)",
    ),
    ("no GO gate at all", lambda: facts(last_go=None), "no GO from /gate yet"),
    ("GO for another version", lambda: facts(last_go=evaluation(V2)), "was for version 2222222, but 1111111"),
    ("GO too old", lambda: facts(last_go=evaluation(minutes_ago=61)), "is 61 min old, limit 60 min"),
    (
        "NO-GO after the GO",
        lambda: facts(
            evidence=evidence(latest=evaluation(verdict=GateVerdict.NO_GO, minutes_ago=1, gate_id="gate_nogo"))
        ),
        "gate_nogo was NO-GO after the last GO",
    ),
    ("already at the last stage", lambda: facts("broader-production-cutover"), "already at its last stage"),
    (
        "automatic stage check failing",
        lambda: at_rollout(
            evidence=evidence(
                version=V2,
                attestations=attestations(V2),
                latest=evaluation(V2, override={"nogo-rollback-unclear": failed("no owners")}),
            )
        ),
        "stage check `operator-rollback-ready` is failed",
    ),
    (
        "no backend deploy since the beta",
        lambda: at_rollout(deploy=deploy(changes=(), deploys=(), after_deploy=())),
        "no new backend version deployed since Mobile internal beta began",
    ),
    (
        "only a rollback since the beta",
        lambda: at_rollout(
            deploy=deploy(
                deploys=(), after_deploy=(), rollbacks=(RollbackMark("rb-1", V2, NOW - timedelta(days=1, minutes=5)),)
            )
        ),
        "1111111 → 2222222 was rollback rb-1: a rollback is not a deploy cycle",
    ),
    (
        "no gate after the deploy",
        lambda: at_rollout(deploy=deploy(after_deploy=())),
        "no /gate has checked the contracts since",
    ),
    (
        "contract broken after the deploy",
        lambda: at_rollout(
            deploy=deploy(
                after_deploy=(evaluation(V2, override={"go-kill-switch-maintenance": failed("flags malformed")}),)
            )
        ),
        "contract checks are not passing",
    ),
    ("beta never began", lambda: at_rollout(deploy=DeployFacts(None)), "Mobile internal beta has not begun"),
    (
        "hard-trigger alerts open",
        lambda: facts(evidence=evidence(alerts=("platform auth failures: 785 > 10", "kill-switch misfires: 1 > 0"))),
        "2 hard-trigger alerts open (a rollback trigger, not a stage to move on from): platform auth failures",
    ),
    (
        "soak not over",
        lambda: facts("mobile-internal-beta", soak=Soak(NOW - timedelta(minutes=20))),
        "Mobile internal beta has been clean for 20 min (since 2026-03-01 11:40:00 UTC, when it began); entering "
        "Controlled operator rollout needs 60 min: wait until 2026-03-01 12:40:00 UTC",
    ),
    (
        "an alert cleared within the soak",
        lambda: facts(
            "mobile-internal-beta",
            soak=Soak(NOW - timedelta(hours=5), NOW - timedelta(minutes=10), "alert mon-1 (platform-auth-failures)"),
        ),
        "clean for 10 min (since 2026-03-01 11:50:00 UTC, when alert mon-1 (platform-auth-failures) was last seen)",
    ),
    (
        "broader production needs two hours of the operators' rollout",
        lambda: at_rollout(soak=Soak(NOW - timedelta(minutes=90))),
        "entering Broader production cutover needs 2.0 h",
    ),
    (
        "manual mobile smoke not attested",
        lambda: at_rollout(
            evidence=evidence(
                version=V2,
                latest=evaluation(V2),
                attestations={k: v for k, v in attestations(V2).items() if k != "smoke-mobile-recovers"},
            )
        ),
        "manual mobile smoke not attested for 2222222: 1 of 5 steps missing (`smoke-mobile-recovers`)",
    ),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_missing_precondition_refuses_and_names_itself(
    name: str, make: Callable[[], AdvanceFacts], expected: str
) -> None:
    found = blockers(make())
    assert found, name
    assert any(expected in line for line in found), found


def test_a_refusal_lists_every_missing_entry_condition_at_once() -> None:
    ev = evidence(version=V2, latest=evaluation(V2), attestations={}, alerts=("auth failures: 785 > 10",))
    found = blockers(
        at_rollout(
            evidence=ev, soak=Soak(NOW - timedelta(minutes=5)), deploy=deploy(changes=(), deploys=(), after_deploy=())
        )
    )
    for expected in (
        "stage check `operator-cohort-limited` is pending",
        "1 hard-trigger alert open",
        "clean for 5 min",
        "manual mobile smoke not attested",
        "no new backend version deployed",
    ):
        assert any(expected in line for line in found), (expected, found)


def test_a_rehearsal_soak_replaces_the_runbooks() -> None:
    short = facts("mobile-internal-beta", soak=Soak(NOW - timedelta(seconds=50)), soak_override_s=30.0)
    assert blockers(short) == []
    assert "needs 60 s" in blockers(dataclasses.replace(short, soak_override_s=60.0))[0]


def test_a_rollback_and_a_return_to_an_older_version_are_not_deploys() -> None:
    back = VersionChange(V1, V2, NOW - timedelta(hours=2))
    again = VersionChange(V2, V1, NOW - timedelta(hours=1))
    fresh = VersionChange("3333333", V1, NOW - timedelta(minutes=30))
    marks = (RollbackMark("rb-1", V1, NOW - timedelta(hours=2, minutes=3)),)
    seen = {V1: NOW - timedelta(days=3), V2: DEPLOY.observed_at, "3333333": fresh.observed_at}
    assert real_deploys((DEPLOY, back, again, fresh), marks, seen) == [DEPLOY, fresh]


def test_a_freeze_is_the_only_answer_while_a_rollback_runs() -> None:
    assert blockers(facts(freeze="rollback rb_1", last_go=None)) == [
        "rollback in progress: the cutover is frozen (rollback rb_1) until the rollback is closed"
    ]


def states(stage_id: str, ev: Evidence) -> dict[str, CheckState]:
    return {s.item.id: s.state for s in stage_statuses(RUNBOOK, RUNBOOK.stage(stage_id), ev)}


def test_stage_check_states() -> None:
    assert set(states("backend-internal-validation", evidence()).values()) == {CheckState.PASSED, CheckState.ATTESTED}
    stale = evidence(latest=evaluation(minutes_ago=90))
    assert states("backend-internal-validation", stale)["backend-runtime-control-api"] is CheckState.PENDING
    broken = evidence(latest=evaluation(override={"go-cosmos-execution-data": failed("missing container")}))
    assert states("backend-internal-validation", broken)["backend-execution-containers"] is CheckState.FAILED
    nogo = evidence(latest=evaluation(verdict=GateVerdict.NO_GO))
    assert states("controlled-operator-rollout", nogo)["operator-go-gate"] is CheckState.FAILED
    assert states("broader-production-cutover", evidence())["broad-monitoring-clean"] is CheckState.PASSED
    alerting = evidence(alerts=("backend 401 and 403 spikes: 12 % > 5 %",))
    assert states("broader-production-cutover", alerting)["broad-monitoring-clean"] is CheckState.FAILED


def test_smoke_checklist_needs_automated_smoke_and_the_five_manual_steps() -> None:
    item = RUNBOOK.item("broad-smoke-checklist")
    assert check_status(RUNBOOK, item, evidence()).state is CheckState.PASSED
    partial = {k: v for k, v in attestations().items() if k != "smoke-mobile-recovers"}
    status = check_status(RUNBOOK, item, evidence(attestations=partial))
    assert status.state is CheckState.PENDING and "smoke-mobile-recovers" in status.detail
    red = evidence(latest=evaluation(override={"go-pnpm-smoke": failed("concluded failure")}))
    assert check_status(RUNBOOK, item, red).state is CheckState.FAILED
    grey = evidence(latest=evaluation(override={"go-pnpm-smoke": unknown("rate limited")}))
    assert check_status(RUNBOOK, item, grey).state is CheckState.PENDING


def test_attested_state_names_who() -> None:
    status = check_status(RUNBOOK, RUNBOOK.item("web-operators-moved"), evidence())
    assert isinstance(status, CheckStatus) and status.state is CheckState.ATTESTED
    assert "<@UADMIN>" in status.detail and status.evidence == "seen"


def go7_unattested(version: str) -> EvaluationView:
    """A gate whose contract probe passed while go 7's web/mobile part was not attested (go 7 UNKNOWN)."""
    item = RUNBOOK.item("go-kill-switch-maintenance")
    results = {
        item.id: passed("match the contract", "x-request-id ops-9"),
        attestation_key(item.id): unknown(f"not attested for version {version}"),
    }
    seven = item_outcome("go", item, results)
    assert seven is not None and seven.verdict is Verdict.UNKNOWN
    gate = evaluation(version, verdict=GateVerdict.NO_GO)
    return dataclasses.replace(gate, outcomes=tuple(seven if o.item_id == item.id else o for o in gate.outcomes))


def test_contract_checks_judge_the_probe_not_go_7s_attestation() -> None:
    """Stage 1's runtime-control check and the stability rule are about the backend's contract; the web/mobile
    attestation go 7 also needs does not hold them back, and a broken contract still does."""
    ev = evidence(latest=go7_unattested(V1))
    assert states("backend-internal-validation", ev)["backend-runtime-control-api"] is CheckState.PASSED
    found = blockers(at_rollout(deploy=deploy(after_deploy=(go7_unattested(V2),))))
    assert not any("contract checks" in line for line in found)
