"""Gate benchmark: the 13 go/no-go items under one deadline, against local servers with set latencies.

The real probes (bot.gate.probes) run against the simulated trading backend, GitHub and platform auth
on loopback, each answering after a set latency, and a real Cosmos-protocol server (when node and
`npm ci` are there; else the Cosmos probes answer "not configured" at once and the run says so).
The evaluation is `GateService.evaluate`, exactly what `/gate` runs, minus Slack and the store.

1. Each item alone (a fresh evaluation context, warm token cache; its probe and, for go 7, its
   attestation lookup): its wall time.
2. The whole gate, `--runs` times: wall time over the slowest single probe (target <= 1.2).
3. The whole gate with one probe hanging forever: wall time minus the deadline (target <= 0.2 s).

    python bench/gate.py [--runs 5] [--deadline 2] [--backend-ms 50] [--github-ms 200] [--auth-ms 100]

Prints a table, then as its LAST line one JSON object with the figures (medians over the runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.audit.log import Actor, Entry
from bot.bootstrap import build_deps
from bot.gate.context import GateContext
from bot.gate.engine import attestation_key, gate_items
from bot.gate.models import Attestation
from bot.gate.result import ProbeResult, unknown
from bot.gate.runner import run_all
from bot.gate.service import GateService
from bot.storage.migrate import upgrade
from rehearsal.sim import cosmos as sim_cosmos
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub
from rehearsal.sim.jwks import SimPlatformAuth
from rehearsal.sim.stack import CLIENT_ID, CLIENT_SECRET, GITHUB_TOKEN, ISSUER, REPOSITORY, local_settings

SHA = "abc1234" + "0" * 33
CHECKS = ("pnpm verify", "pnpm lint", "pnpm smoke:release")
CONTAINERS = {
    "dynamic_config": "/id",
    "trading-control": "/id",
    "order": "/tenantId",
    "trade-history": "/accountId",
    "manual-entry": "/tenantId",
}
HANGING_PROBE = "audit-complete"  # the one replaced by a probe that never answers
TARGET_RATIO = 1.2
TARGET_OVERSHOOT_S = 0.2


@contextmanager
def servers(args: argparse.Namespace, tmp: str) -> Iterator[GateService]:
    with ExitStack() as stack:
        auth = stack.enter_context(SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=ISSUER))
        github = stack.enter_context(SimGitHub(token=GITHUB_TOKEN, repository=REPOSITORY))
        backend = stack.enter_context(SimBackend(jwt_public_key=auth.public_pem(), issuer=ISSUER, version=SHA))
        for name in CHECKS:
            github.set_check(SHA, name)
        overrides: dict[str, Any] = {"OPSBOT_GATE_DEADLINE_SECONDS": args.deadline, "OPSBOT_ROLLBACK_OWNERS": "UOWNER"}
        if not args.no_cosmos and sim_cosmos.available():
            server = stack.enter_context(sim_cosmos.CosmosServer())
            server.seed("opsbot-bench", CONTAINERS)
            overrides.update(COSMOS_ENDPOINT=server.endpoint, COSMOS_KEY=server.key, COSMOS_DATABASE="opsbot-bench")
        settings = local_settings(
            database_url=f"sqlite:///{tmp}/bench.db",
            backend_url=backend.url,
            slack_api_url="http://127.0.0.1:9/",
            auth=auth,
            github_url=github.url,
            **overrides,
        )
        deps = build_deps(settings)
        upgrade(deps.engine)
        stack.callback(deps.engine.dispose)
        service = deps.gate
        if service.tokens is not None:
            service.tokens.token()  # the token endpoint is not one of the 13 probes: warm its cache
        attest_manual_items(service)
        backend.faults.latency_s = args.backend_ms / 1000
        github.faults.latency_s = args.github_ms / 1000
        auth.faults.latency_s = args.auth_ms / 1000
        yield service


def attest_manual_items(service: GateService) -> None:
    """An admin's attestation of every gate item that needs one (the two manual items and go 7's web/mobile
    part), so a healthy run is GO."""
    for _, item in gate_items(service.parts.runbook):
        if item.kind == "attested" or item.attestation is not None:
            row = Attestation(
                check_id=item.id, version=SHA, evidence="bench", attested_by="UADMIN", attested_at=service.parts.clock()
            )
            service.store.attest(row, Entry(Actor("", "UADMIN"), "gate.attested", "accepted", {"check_id": item.id}))


def single_probe_times(service: GateService) -> dict[str, float]:
    """Each of the 13 items evaluated alone (all its parts: probe, and attestation when it needs one), in a
    fresh context: seconds."""
    times: dict[str, float] = {}
    for _, item in gate_items(service.parts.runbook):
        started = time.monotonic()
        ctx = service.context(f"ops-bench-{item.id}", started=started)
        parts = {key: task for key, task in service.tasks(ctx).items() if key in (item.id, attestation_key(item.id))}
        run_all(parts, deadline_s=service.deadline_s, started=started)
        times[item.id] = time.monotonic() - started
    return times


def hanging(release: threading.Event) -> Any:
    def probe(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
        release.wait()
        return unknown("released after the run")

    return probe


def measure(service: GateService, runs: int) -> dict[str, Any]:
    singles = [single_probe_times(service) for _ in range(runs)]
    single = {k: statistics.median(s[k] for s in singles) for k in singles[0]}
    walls, verdict = [], ""
    for n in range(runs):
        evaluation = service.evaluate(request_id=f"ops-bench-gate-{n}")
        walls.append(evaluation.wall_s)
        verdict = evaluation.verdict.value
    release = threading.Event()
    service.overrides[HANGING_PROBE] = hanging(release)
    try:
        hang_walls, hang_states = [], set()
        for n in range(runs):
            evaluation = service.evaluate(request_id=f"ops-bench-hang-{n}")
            hang_walls.append(evaluation.wall_s)
            hang_states |= {o.result.reason for o in evaluation.outcomes if o.probe == HANGING_PROBE}
    finally:
        release.set()
        service.overrides.clear()
    return {
        "single": single,
        "walls": walls,
        "verdict": verdict,
        "hang_walls": hang_walls,
        "hang_reasons": sorted(hang_states),
    }


def report(service: GateService, found: dict[str, Any], args: argparse.Namespace, cosmos: bool) -> dict[str, Any]:
    single: dict[str, float] = found["single"]
    slowest_item = max(single, key=lambda k: single[k])
    wall = statistics.median(found["walls"])
    hang = statistics.median(found["hang_walls"])
    print(
        f"latencies: backend {args.backend_ms} ms, GitHub {args.github_ms} ms, platform auth {args.auth_ms} ms, "
        f"Cosmos {'local server' if cosmos else 'not configured'}; deadline {args.deadline} s; {args.runs} runs"
    )
    print(f"{'probe (alone)':<34}{'seconds':>9}")
    for item_id, seconds in sorted(single.items(), key=lambda kv: -kv[1]):
        print(f"{item_id:<34}{seconds:>9.3f}")
    print(
        f"gate wall (median): {wall:.3f} s; slowest single probe {slowest_item} {single[slowest_item]:.3f} s; "
        f"ratio {wall / single[slowest_item]:.2f} (target <= {TARGET_RATIO})"
    )
    print(
        f"gate with {HANGING_PROBE} hanging: {hang:.3f} s for a {args.deadline} s deadline, overshoot "
        f"{hang - args.deadline:.3f} s (target <= {TARGET_OVERSHOOT_S}); shown as {found['hang_reasons']}"
    )
    return {
        "probes": len(single),
        "runs": args.runs,
        "deadline_s": args.deadline,
        "cosmos": cosmos,
        "slowest_probe": slowest_item,
        "slowest_single_s": round(single[slowest_item], 4),
        "gate_wall_s": round(wall, 4),
        "ratio": round(wall / single[slowest_item], 3),
        "target_ratio": TARGET_RATIO,
        "hang_wall_s": round(hang, 4),
        "hang_overshoot_s": round(hang - args.deadline, 4),
        "target_overshoot_s": TARGET_OVERSHOOT_S,
        "verdict": found["verdict"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/gate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=2.0, help="OPSBOT_GATE_DEADLINE_SECONDS for the runs")
    parser.add_argument("--backend-ms", type=int, default=50)
    parser.add_argument("--github-ms", type=int, default=200)
    parser.add_argument("--auth-ms", type=int, default=100)
    parser.add_argument("--no-cosmos", action="store_true", help="do not start the local Cosmos server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-gate-") as tmp, servers(args, tmp) as service:
        cosmos = service.parts.cosmos is not None
        figures = report(service, measure(service, args.runs), args, cosmos)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
