"""The probe registry: every probe the runbook names (bot.runbook.model.KNOWN_PROBES) → how it is checked.

A probe is `callable(params, ctx) -> ProbeResult` with PASS meaning "good" (for no-go probes: the
no-go condition does not hold). Expected faults become FAIL or UNKNOWN with a one-line reason and
evidence (a link, a figure, an x-request-id); they never raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.clients import cosmos
from bot.clients.backend_errors import BackendError, BackendNotConfigured, BackendRejected
from bot.clients.cosmos_errors import CosmosError, CosmosUnavailable
from bot.clients.cosmos_probe import CosmosProber
from bot.clients.github import CheckRun
from bot.clients.github_errors import GitHubError, GitHubRateLimited
from bot.gate.audit_check import audit_finding
from bot.gate.composite import composite
from bot.gate.context import GateContext, plain
from bot.gate.probe_auth import auth_source_ambiguous, backend_rejects_unauthorized, platform_auth_reachable
from bot.gate.result import ProbeResult, failed, passed, unknown
from bot.storage.errors import StoreUnavailable

Probe = Callable[[Mapping[str, Any], GateContext], ProbeResult]
OK_CONCLUSIONS = frozenset({"success"})


def github_check(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    """A CI check run (runbook name → OPSBOT_CHECK_NAMES) on the commit the backend reports as deployed."""
    wanted = str(params["check"])
    name = ctx.settings.check_names.get(wanted, wanted)
    version, problem = ctx.version()
    if version is None:
        return unknown(f"deployed version unknown, so CI cannot be looked up: {problem}")
    try:
        runs = [run for run in ctx.check_runs(version) if run.name == name]
    except GitHubError as exc:
        return unknown(_github_reason(exc, version))
    if not runs:
        return failed(f"no check run named {name!r} on commit {version[:12]}")
    run = max(runs, key=_recency)
    link = run.html_url or ""
    if run.status != "completed":
        return unknown(f"{name!r} is still {run.status.replace('_', ' ')} on {version[:12]}", link)
    if run.conclusion in OK_CONCLUSIONS:
        return passed(f"{name!r} succeeded on {version[:12]}", link)
    return failed(f"{name!r} concluded {run.conclusion or 'without a conclusion'} on {version[:12]}", link)


def _recency(run: CheckRun) -> tuple[bool, str]:
    # A re-run still in progress is newer than any completed run of the same name.
    return run.completed_at is None, run.completed_at.isoformat() if run.completed_at else ""


def _github_reason(exc: GitHubError, version: str) -> str:
    if isinstance(exc, GitHubRateLimited):
        when = exc.reset_at.strftime("%H:%M:%S UTC") if exc.reset_at else "a few minutes"
        return f"GitHub rate limit reached (resets {when}): CI of {version[:12]} not read"
    return f"CI of {version[:12]} not read: " + plain(exc.operator_text())


def platform_auth(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    return platform_auth_reachable(
        settings=ctx.settings, tokens=ctx.tokens, http=ctx.http, timeout_s=ctx.remaining(5.0)
    )


def _cosmos_probe(containers: tuple[str, ...], what: str) -> Probe:
    def probe(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
        if ctx.cosmos is None:
            return unknown(f"Cosmos is not configured ({', '.join(cosmos.cosmos_missing(ctx.settings))} not set)")
        prober, done = CosmosProber(ctx.cosmos), list[str]()
        for name in containers:
            try:
                result = prober.probe(name)
            except CosmosUnavailable as exc:
                return unknown(f"{what}: {exc.detail}", "; ".join(done))
            except CosmosError as exc:  # missing container, forbidden, bad answer
                return failed(f"{what}: {exc.detail}", "; ".join(done))
            done.append(f"{result.container} {result.total_ms:.0f} ms")
        return passed(
            f"{what}: read, wrote, read back and deleted a probe document in {', '.join(containers)}",
            f"{ctx.cosmos.database}: " + "; ".join(done),
        )

    return probe


def control_contract(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    """`GET /api/trading-control` and `GET /api/feature-flags` answer in the contract's shape."""
    rid = ctx.request_id
    try:
        control = ctx.backend.trading_control(request_id=rid)
        flags = ctx.backend.feature_flags(request_id=rid)
    except BackendNotConfigured as exc:
        return unknown(plain(exc.operator_text()))
    except BackendError as exc:
        return _backend_result(exc)
    bad = [key for key, flag in flags.data["flags"].items() if not _flag_ok(flag)]
    evidence = f"x-request-id {rid}" + ("" if control.echoed and flags.echoed else " (NOT echoed by the backend)")
    if bad:
        return failed(f"feature flags not in the contract's shape: {', '.join(sorted(bad)[:5])}", evidence)
    c = control.data
    if c.missing:
        return failed(f"trading-control lacks the contract's {', '.join(c.missing[:5])}", evidence)
    return passed(
        f"trading-control (revision {c.revision}, global {'HALTED' if c.global_.halted else 'trading'}, "
        f"maintenance {'on' if c.maintenance_enabled else 'off'}) and {len(flags.data['flags'])} "
        "feature flags match the contract",
        evidence,
    )


def _flag_ok(flag: Any) -> bool:
    return isinstance(flag, dict) and isinstance(flag.get("enabled"), bool) and isinstance(flag.get("description"), str)


def _backend_result(exc: BackendError) -> ProbeResult:
    evidence = f"x-request-id {exc.request_id}"
    if exc.status is not None and 200 <= exc.status < 300:  # answered, but not in the contract's shape
        return failed(f"the backend's answer does not match the contract ({exc.detail})", evidence)
    if isinstance(exc, BackendRejected):
        return failed(f"the backend refused the bot (HTTP {exc.status}: {exc.detail})", evidence)
    return unknown(f"backend unavailable ({exc.detail})", evidence)


def rejects_unauthorized(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    return backend_rejects_unauthorized(
        base_url=ctx.settings.trading_api_url,
        http=ctx.http,
        request_id=ctx.request_id,
        timeout_s=ctx.remaining(5.0),
        issuer=ctx.settings.platform_jwt_issuer,
    )


def auth_ambiguous(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    return auth_source_ambiguous(ctx.settings)


def audit_complete(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    try:
        finding = audit_finding(ctx.audit, ctx.engine)
    except StoreUnavailable as exc:
        return unknown(f"the audit store cannot be read: {exc}")
    if not finding.chain_ok:
        return failed(f"audit chain broken at row {finding.bad_seq}: {finding.problem}", "opsbot audit verify")
    if finding.gaps:
        shown = "; ".join(f"{g.approval_id} ({g.action}) has no {', '.join(g.missing)} row" for g in finding.gaps[:3])
        return failed(f"{len(finding.gaps)} executed approvals are not fully audited: {shown}")
    return passed(
        f"audit chain intact ({finding.rows} rows); all {finding.executed} executed approvals have "
        "their requested, approved and executed rows"
    )


def rollback_clarity(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
    owners, workflow = sorted(ctx.settings.rollback_owners), ctx.settings.rollback_workflow
    problems = []
    if not owners:
        problems.append("no rollback owners configured (OPSBOT_ROLLBACK_OWNERS)")
    if not workflow:
        problems.append("no rollback workflow configured (OPSBOT_ROLLBACK_WORKFLOW)")
    if problems:
        return failed("rollback owner or commands unclear: " + "; ".join(problems))
    who = ", ".join(f"<@{u}>" for u in owners[:10])
    repo = ctx.settings.github_repository or "GITHUB_REPOSITORY unset"
    return passed(f"rollback owners {who}; rollback workflow {workflow}", f"{repo}: .github/workflows/{workflow}")


def _composite(name: str) -> Probe:
    def probe(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
        return composite(ctx.runbook, name, ctx.evidence())

    return probe


PROBES: dict[str, Probe] = {
    "github-check": github_check,
    "platform-auth": platform_auth,
    "cosmos-control-plane": _cosmos_probe(cosmos.CONTROL_PLANE, "Cosmos control-plane"),
    "cosmos-execution-data": _cosmos_probe(cosmos.EXECUTION_DATA, "Cosmos execution-data"),
    "backend-rejects-unauthorized": rejects_unauthorized,
    "control-contract": control_contract,
    "auth-source-ambiguous": auth_ambiguous,
    "audit-complete": audit_complete,
    "rollback-clarity": rollback_clarity,
    "go-gate": _composite("go-gate"),
    "smoke-checklist": _composite("smoke-checklist"),
    "monitoring-clean": _composite("monitoring-clean"),
}
