"""The go/no-go rules table-tested, the attestation rule, and the concurrent runner's one deadline."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from bot.gate.context import Once
from bot.gate.engine import (
    AttestationView,
    GateVerdict,
    ItemOutcome,
    attestation_key,
    attested,
    decide,
    gate_items,
    holds_text,
    item_outcome,
    with_attestation,
)
from bot.gate.result import ProbeResult, Verdict, failed, passed, unknown
from bot.gate.runner import run_all
from bot.runbook.load import load_runbook

RUNBOOK = load_runbook()
ITEMS = [item.id for _, item in gate_items(RUNBOOK)]
RESULT = {v: ProbeResult(v, v.value) for v in Verdict}
ALL_PASS = {item_id: RESULT[Verdict.PASS] for item_id in ITEMS}


def test_the_gate_has_the_runbooks_ten_go_and_three_no_go_items() -> None:
    sections = [section for section, _ in gate_items(RUNBOOK)]
    assert sections.count("go") == 10 and sections.count("no_go") == 3


def test_go_only_when_every_item_passes() -> None:
    assert decide(RUNBOOK, ALL_PASS) is GateVerdict.GO


@pytest.mark.parametrize("item_id", ITEMS)
@pytest.mark.parametrize("verdict", [Verdict.FAIL, Verdict.UNKNOWN, None])
def test_any_single_item_not_passing_is_no_go(item_id: str, verdict: Verdict | None) -> None:
    """A failing go condition, a holding no-go condition, an unknown, or a missing result: each is NO-GO."""
    results = dict(ALL_PASS)
    if verdict is None:
        del results[item_id]
    else:
        results[item_id] = RESULT[verdict]
    assert decide(RUNBOOK, results) is GateVerdict.NO_GO


def test_every_combination_except_all_pass_is_no_go() -> None:
    """All 3^13 combinations of PASS/FAIL/UNKNOWN over the 13 items: exactly one is GO."""
    go = [
        combo
        for combo in itertools.product(list(Verdict), repeat=len(ITEMS))
        if decide(RUNBOOK, {i: RESULT[v] for i, v in zip(ITEMS, combo, strict=True)}) is GateVerdict.GO
    ]
    assert go == [(Verdict.PASS,) * len(ITEMS)]


def test_no_go_items_read_the_other_way_round() -> None:
    item = RUNBOOK.no_go[0]
    holds = ItemOutcome(item.id, "no_go", item.text, item.probe, {}, failed("ambiguous"))
    clear = ItemOutcome(item.id, "no_go", item.text, item.probe, {}, passed("unambiguous"))
    assert holds_text(holds) == "HOLDS" and holds_text(clear) == "does not hold"
    assert ItemOutcome.from_json(holds.to_json()) == holds


def test_attested_item_passes_only_for_the_current_version() -> None:
    item = RUNBOOK.item("go-no-legacy-data")
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    mine = AttestationView(item.id, "v2", "https://example.com/report", "UADMIN", at)
    assert attested(item, mine, "v2").verdict is Verdict.PASS
    assert "<@UADMIN>" in attested(item, mine, "v2").reason
    assert attested(item, mine, "v2").evidence == "https://example.com/report"
    old = attested(item, AttestationView(item.id, "v1", "x", "UADMIN", at), "v2")
    assert old.verdict is Verdict.UNKNOWN and "not attested for version v2" in old.reason
    assert attested(item, None, "v2").verdict is Verdict.UNKNOWN
    assert attested(item, mine, None).verdict is Verdict.UNKNOWN


KILL_SWITCH = RUNBOOK.item("go-kill-switch-maintenance")
CONTRACT = passed("trading-control and 4 feature flags match the contract", "x-request-id ops-1")
ATTESTED = passed("attested by <@UADMIN> at 2026-01-02 03:04 UTC", "banners on web 3.1, iOS 2.4")
NOT_ATTESTED = unknown("not attested for version v2: an admin runs `/gate attest go-kill-switch-maintenance <e>`")


@pytest.mark.parametrize(
    ("probe", "person", "verdict"),
    [
        (CONTRACT, ATTESTED, Verdict.PASS),
        (CONTRACT, NOT_ATTESTED, Verdict.UNKNOWN),
        (failed("flags malformed"), ATTESTED, Verdict.FAIL),
        (failed("flags malformed"), NOT_ATTESTED, Verdict.FAIL),
        (unknown("backend down"), ATTESTED, Verdict.UNKNOWN),
    ],
)
def test_an_item_with_an_attestation_needs_its_probe_and_the_person(
    probe: ProbeResult, person: ProbeResult, verdict: Verdict
) -> None:
    outcome = item_outcome("go", KILL_SWITCH, {KILL_SWITCH.id: probe, attestation_key(KILL_SWITCH.id): person})
    assert outcome is not None and outcome.verdict is verdict
    assert outcome.result.reason.startswith(probe.reason + "; web and mobile validation ")
    assert outcome.automatic == probe  # what stage checks and the contract rule judge
    assert ItemOutcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome


def test_both_parts_are_shown() -> None:
    done = with_attestation(KILL_SWITCH, CONTRACT, ATTESTED)
    assert done.reason == (
        f"{CONTRACT.reason}; web and mobile validation attested by <@UADMIN> at 2026-01-02 03:04 UTC"
    )
    assert done.evidence == "x-request-id ops-1; attested: banners on web 3.1, iOS 2.4"
    missing = with_attestation(KILL_SWITCH, CONTRACT, NOT_ATTESTED).reason
    assert "; web and mobile validation NOT attested for version v2: an admin runs `/gate attest go-kill" in missing
    late = with_attestation(KILL_SWITCH, CONTRACT, unknown("timed out after 2 s (the gate's deadline)")).reason
    assert late.endswith("web and mobile validation NOT attested: timed out after 2 s (the gate's deadline)")
    # Until both parts answered, the item is still running.
    assert item_outcome("go", KILL_SWITCH, {KILL_SWITCH.id: CONTRACT}) is None


def sleeper(seconds: float, result: ProbeResult) -> ProbeResult:
    time.sleep(seconds)
    return result


def test_probes_run_concurrently() -> None:
    tasks = {f"p{i}": lambda: sleeper(0.3, passed("ok")) for i in range(13)}
    started = time.monotonic()
    results = run_all(tasks, deadline_s=5)
    took = time.monotonic() - started
    assert took < 0.3 * 1.5, took
    assert all(r.verdict is Verdict.PASS and r.elapsed_ms >= 290 for r in results.values())


def test_a_hanging_probe_is_unknown_at_the_deadline_and_does_not_delay_the_rest() -> None:
    release = threading.Event()
    tasks = {
        "fast": lambda: passed("ok"),
        "hangs": lambda: sleeper(0, passed("late")) if release.wait(30) else passed("never"),
        "slow": lambda: sleeper(0.2, failed("bad")),
    }
    started = time.monotonic()
    try:
        results = run_all(tasks, deadline_s=0.6)
        took = time.monotonic() - started
    finally:
        release.set()
    assert 0.6 <= took < 0.6 + 0.2, took
    assert list(results) == ["fast", "hangs", "slow"]
    assert results["hangs"].verdict is Verdict.UNKNOWN and results["hangs"].reason.startswith("timed out after 0.6 s")
    assert results["fast"].verdict is Verdict.PASS and results["slow"].verdict is Verdict.FAIL


def test_a_crashing_probe_is_unknown() -> None:
    def boom() -> ProbeResult:
        raise ValueError("secret detail")

    results = run_all({"boom": boom}, deadline_s=1)
    assert results["boom"].verdict is Verdict.UNKNOWN and "ValueError" in results["boom"].reason
    assert "secret detail" not in results["boom"].reason


def test_progress_is_reported_at_most_twice_a_second() -> None:
    reports: list[int] = []
    tasks = {f"p{i}": (lambda i=i: sleeper(i * 0.1, passed("ok"))) for i in range(12)}
    results = run_all(tasks, deadline_s=5, progress=lambda partial: reports.append(len(partial)), every_s=0.5)
    assert len(results) == 12
    assert 1 <= len(reports) <= 3 and reports == sorted(reports) and reports[-1] < 12


def test_a_failing_progress_report_does_not_stop_the_evaluation() -> None:
    def broken(_: dict[str, ProbeResult]) -> None:
        raise RuntimeError("slack down")

    tasks = {"a": lambda: passed("ok"), "b": lambda: sleeper(0.3, unknown("?"))}
    results = run_all(tasks, deadline_s=2, progress=broken, every_s=0.05)
    assert results["b"].verdict is Verdict.UNKNOWN and results["a"].verdict is Verdict.PASS


def test_once_computes_a_shared_lookup_a_single_time() -> None:
    once, calls = Once(), []

    def compute() -> str:
        calls.append(1)
        time.sleep(0.1)
        return "sha"

    threads = [threading.Thread(target=once.get, args=("health", compute)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and once.get("health", compute) == "sha"
    assert once.peek("health") is not None and once.peek("other") is None

    def fails() -> str:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            once.get("broken", fails)
