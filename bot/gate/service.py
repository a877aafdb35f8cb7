"""One release go/no-go evaluation end to end: probes under one deadline, verdict, store and audit.

Slack-free, so the command, the cutover and the benchmark run exactly the same evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from sqlalchemy import Engine

from bot.audit.log import Actor, AuditLog, Entry
from bot.clients.backend import TradingBackend
from bot.clients.backend_errors import BackendError
from bot.clients.cosmos import CosmosReader
from bot.clients.github import GitHub
from bot.clients.tokens import TokenSource, build_token_source
from bot.errors import OpsbotError
from bot.gate.composite import Evidence
from bot.gate.context import GateContext, plain
from bot.gate.engine import GateVerdict, ItemOutcome, attestation_key, attested, decide, gate_items, item_outcome
from bot.gate.models import GateEvaluation
from bot.gate.probes import PROBES, Probe
from bot.gate.result import ProbeResult, unknown
from bot.gate.runner import Task, run_all
from bot.gate.store import GateStore, new_evaluation_id
from bot.gate.warnings import collect, start
from bot.monitoring.clean import open_breaches
from bot.runbook.model import CheckItem, Runbook
from bot.settings import Settings

log = logging.getLogger("opsbot.gate")

Progress = Callable[[list[ItemOutcome], str | None], None]  # results so far, the version once known


@dataclass(frozen=True)
class Evaluation:
    id: str
    started_at: datetime
    version: str | None
    version_problem: str
    verdict: GateVerdict
    outcomes: list[ItemOutcome]
    request_id: str
    wall_s: float
    warnings: tuple[str, ...] = ()  # shown above the verdict, never part of it (bot.gate.warnings)


@dataclass(frozen=True)
class GateParts:
    """What one evaluation reads: the backend, GitHub, Cosmos (its probe-document key), the store."""

    settings: Settings
    runbook: Runbook
    engine: Engine
    audit: AuditLog
    backend: TradingBackend
    github: GitHub
    http: httpx.Client
    cosmos: CosmosReader | None
    clock: Callable[[], datetime]


class GateService:
    def __init__(self, parts: GateParts, *, tokens: TokenSource | None = None) -> None:
        self.parts = parts
        self.store = GateStore(parts.engine, parts.audit)
        self.tokens = tokens if tokens is not None else build_token_source(parts.settings, parts.http)
        self.overrides: dict[str, Probe] = {}  # probe name -> stand-in (the benchmark's hanging probe)

    @property
    def deadline_s(self) -> float:
        return self.parts.settings.gate_deadline_seconds

    def context(self, request_id: str, *, started: float) -> GateContext:
        p = self.parts
        return GateContext(
            p.settings,
            p.runbook,
            p.backend,
            p.github,
            p.http,
            self.tokens,
            p.cosmos,
            p.audit,
            p.engine,
            self.store,
            request_id,
            p.clock(),
            started + self.deadline_s,
        )

    def tasks(self, ctx: GateContext) -> dict[str, Task]:
        tasks: dict[str, Task] = {}
        for _, item in gate_items(ctx.runbook):
            if item.kind == "attested":
                tasks[item.id] = partial(_attested, item, ctx)
                continue
            probe = item.probe or ""
            tasks[item.id] = partial(self.overrides.get(probe) or PROBES[probe], item.params, ctx)
            if item.attestation is not None:  # the person's part runs alongside the probe
                tasks[attestation_key(item.id)] = partial(_attested, item, ctx)
        return tasks

    def outcomes(self, results: dict[str, ProbeResult]) -> list[ItemOutcome]:
        found = (item_outcome(section, item, results) for section, item in gate_items(self.parts.runbook))
        return [outcome for outcome in found if outcome is not None]

    def evaluate(self, *, request_id: str, progress: Progress | None = None) -> Evaluation:
        """Run every go and no-go item at once; returns within the deadline (plus bookkeeping)."""
        started, started_at = time.monotonic(), self.parts.clock()
        ctx = self.context(request_id, started=started)
        warnings = start(self.parts.engine, self.parts.audit, self.parts.runbook, started_at)
        report = (lambda partial_: progress(self.outcomes(partial_), ctx.version_if_known()[0])) if progress else None
        results = run_all(self.tasks(ctx), deadline_s=self.deadline_s, progress=report, started=started)
        version, problem = ctx.version_if_known()
        outcomes = self.outcomes(results)
        verdict = decide(self.parts.runbook, {o.item_id: o.result for o in outcomes})
        noted = collect(warnings, ctx.deadline_at)
        evaluation = Evaluation(
            new_evaluation_id(),
            started_at,
            version,
            problem,
            verdict,
            outcomes,
            request_id,
            time.monotonic() - started,
            noted,
        )
        log.info("gate %s: %s for %s in %.2f s", evaluation.id, evaluation.verdict, version, evaluation.wall_s)
        return evaluation

    def record(self, evaluation: Evaluation, *, actor: Actor, channel: str, message_ts: str | None) -> None:
        """Store the evaluation and its audit row in one transaction; note the version seen."""
        row = GateEvaluation(
            id=evaluation.id,
            started_at=evaluation.started_at,
            finished_at=evaluation.started_at + timedelta(seconds=evaluation.wall_s),
            version=evaluation.version,
            verdict=evaluation.verdict.value,
            requested_by=actor.user_id,
            channel=channel,
            request_id=evaluation.request_id,
            message_ts=message_ts,
            deadline_s=self.deadline_s,
            results=json.dumps([o.to_json() for o in evaluation.outcomes]),
        )
        params = {
            "evaluation_id": evaluation.id,
            "version": evaluation.version,
            "verdict": evaluation.verdict.value,
            "results": {o.item_id: o.verdict.value for o in evaluation.outcomes},
            "warnings": list(evaluation.warnings),
        }
        self.store.save_evaluation(
            row, Entry(actor, "gate.evaluated", evaluation.verdict.value, params, evaluation.request_id, "", channel)
        )
        if evaluation.version:
            self.store.observe(evaluation.version, at=evaluation.started_at, source="gate")

    def deployed_version(self, request_id: str, *, source: str) -> tuple[str | None, str]:
        """The backend's version now (and noted as observed), or None and why not."""
        try:
            version = self.parts.backend.health(request_id=request_id).data.version
        except BackendError as exc:
            return None, plain(exc.operator_text())
        try:
            self.store.observe(version, at=self.parts.clock(), source=source)
        except OpsbotError:
            log.warning("could not record the observed backend version %s", version)
        return version, ""

    def evidence(self, version: str | None, problem: str = "") -> Evidence:
        latest = self.store.latest_for_version(version) if version else None
        attestations = self.store.attestations(version) if version else {}
        return Evidence(
            version,
            latest,
            attestations,
            self.parts.clock(),
            timedelta(seconds=self.parts.settings.gate_max_age_seconds),
            problem,
            alerts=open_breaches(self.parts.engine, self.parts.audit, self.parts.runbook),
        )


def _attested(item: CheckItem, ctx: GateContext) -> ProbeResult:
    version, problem = ctx.version()
    if version is None:
        return unknown(f"deployed backend version unknown ({problem}); attestations are per version")
    return attested(item, ctx.attestations(version).get(item.id), version)
