"""Each gate probe against local servers: GitHub check runs (404, rate limit, slow), JWKS (rotation, 404,
slow), the backend contract and 401 rule, the audit chain, rollback clarity, auth ambiguity."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.approvals.store import new_approval_id
from bot.audit.log import SYSTEM, Entry
from bot.clients.tokens import build_token_source
from bot.gate.probes import PROBES
from bot.gate.result import Verdict
from bot.gate.runner import run_all
from bot.runbook.model import KNOWN_PROBES
from bot.storage.db import transaction, utcnow
from bot.storage.models import Approval
from tests.support.audit import unguarded
from tests.support.gate import SHA
from tests.support.probes import World

REPO_CHECKS = f"/repos/acme/trading/commits/{SHA}/check-runs"


def check(world: World, name: str = "pnpm verify", **overrides: Any) -> Any:
    return PROBES["github-check"]({"check": name}, world.context(**overrides))


def test_registry_knows_every_probe_the_runbook_names() -> None:
    assert set(PROBES) == set(KNOWN_PROBES)


def test_ci_check_of_the_deployed_commit_passes_with_its_link(world: World) -> None:
    result = check(world)
    assert result.verdict is Verdict.PASS and "succeeded on abc1234" in result.reason
    assert result.evidence.startswith("https://github.com/acme/trading/runs/")


def test_three_ci_checks_share_one_github_call_and_one_health_call(world: World) -> None:
    ctx = world.context()
    tasks = {
        name: (lambda name=name: PROBES["github-check"]({"check": name}, ctx))
        for name in ("pnpm verify", "pnpm lint", "pnpm smoke:release")
    }
    results = run_all(tasks, deadline_s=5)
    assert {r.verdict for r in results.values()} == {Verdict.PASS}
    assert len(world.github.calls("GET", REPO_CHECKS)) == 1
    assert len(world.backend.calls("GET", "/api/health")) == 1


def test_failed_running_and_missing_checks(world: World) -> None:
    world.github.set_check(SHA, "pnpm lint", "failure")
    world.github.set_check(SHA, "pnpm smoke:release", None)
    lint, smoke = check(world, "pnpm lint"), check(world, "pnpm smoke:release")
    assert lint.verdict is Verdict.FAIL and "concluded failure" in lint.reason and lint.evidence
    assert smoke.verdict is Verdict.UNKNOWN and "still in progress" in smoke.reason
    missing = check(world, "pnpm e2e")
    assert missing.verdict is Verdict.FAIL and "no check run named 'pnpm e2e'" in missing.reason


def test_check_names_are_configurable(world: World) -> None:
    world.github.set_check(SHA, "CI / verify")
    mapped = check(world, OPSBOT_CHECK_NAMES={"pnpm verify": "CI / verify"})
    assert mapped.verdict is Verdict.PASS and "'CI / verify'" in mapped.reason


def test_github_404_and_rate_limit_are_unknown_with_the_reason(world: World) -> None:
    world.github.status_for(REPO_CHECKS, 404)
    not_found = check(world)
    assert not_found.verdict is Verdict.UNKNOWN and "no such resource" in not_found.reason
    reset = world.github.rate_limit()
    limited = check(world)
    assert limited.verdict is Verdict.UNKNOWN and "rate limit" in limited.reason
    assert time.strftime("%H:%M:%S", time.gmtime(reset)) in limited.reason
    world.github.status_for(REPO_CHECKS, 502, times=2)
    assert check(world).verdict is Verdict.UNKNOWN


def test_slow_github_is_unknown_at_the_deadline(world: World) -> None:
    world.github.faults.latency_s = 3
    ctx = world.context(deadline_s=0.5)
    started = time.monotonic()
    results = run_all({"ci": lambda: PROBES["github-check"]({"check": "pnpm verify"}, ctx)}, deadline_s=0.5)
    assert time.monotonic() - started < 0.5 + 0.2
    assert results["ci"].verdict is Verdict.UNKNOWN and "timed out after 0.5 s" in results["ci"].reason


def test_unknown_deployed_version_means_ci_unknown(world: World) -> None:
    world.backend.faults.fail_status = 503
    result = check(world)
    assert result.verdict is Verdict.UNKNOWN and "deployed version unknown" in result.reason


def test_platform_auth_verifies_a_token_and_survives_key_rotation(world: World) -> None:
    ctx = world.context()
    first = PROBES["platform-auth"]({}, ctx)
    assert first.verdict is Verdict.PASS and world.auth.current_kid in first.reason
    assert first.evidence.startswith(world.auth.jwks_url) and "iss platform-service" in first.evidence
    old = world.auth.current_kid
    new = world.auth.rotate()  # the old key stays published: the cached token still verifies
    assert PROBES["platform-auth"]({}, ctx).verdict is Verdict.PASS
    world.auth.rotate(keep_old=False)  # now the cached token's key is gone: the backend would refuse it too
    dropped = PROBES["platform-auth"]({}, ctx)
    assert dropped.verdict is Verdict.FAIL and f"no key matching the token's kid {old}" in dropped.reason
    fresh = PROBES["platform-auth"]({}, world.context())  # a new token, signed with the newest key
    assert fresh.verdict is Verdict.PASS and world.auth.current_kid in fresh.reason and new != old


def test_platform_auth_jwks_404_fails_and_slow_jwks_is_unknown(world: World) -> None:
    settings = world.settings()
    tokens = build_token_source(settings, world.http)
    assert tokens is not None
    tokens.token()  # cached before the auth edge misbehaves
    world.auth.faults.fail_status = 404
    not_found = PROBES["platform-auth"]({}, world.context(tokens=tokens))
    assert not_found.verdict is Verdict.FAIL and "answered HTTP 404" in not_found.reason
    world.auth.faults.fail_status = None
    world.auth.faults.latency_s = 3
    started = time.monotonic()
    slow = PROBES["platform-auth"]({}, world.context(tokens=tokens, deadline_s=0.5))
    assert time.monotonic() - started < 1.0
    assert slow.verdict is Verdict.UNKNOWN and "timed out" in slow.reason


def test_issuer_is_checked(world: World) -> None:
    result = PROBES["platform-auth"]({}, world.context(PLATFORM_JWT_ISSUER="someone-else"))
    assert result.verdict is Verdict.FAIL and "expected 'someone-else'" in result.reason


def test_backend_contract_and_unauthorized_rejection(world: World) -> None:
    contract = PROBES["control-contract"]({}, world.context(request_id="ops-contract"))
    assert contract.verdict is Verdict.PASS and contract.evidence == "x-request-id ops-contract"
    assert "4 feature flags" in contract.reason
    rejects = PROBES["backend-rejects-unauthorized"]({}, world.context(request_id="ops-401"))
    assert rejects.verdict is Verdict.PASS and "ops-401-noauth: 401" in rejects.evidence
    world.backend.faults.fail_status = 503
    assert PROBES["control-contract"]({}, world.context()).verdict is Verdict.UNKNOWN


ODD_DOCS = {
    "/api/trading-control": {"global": {"halted": False}, "scopes": [], "revision": 3},
    "/api/feature-flags": {"flags": {"web.kill_switch": {"enabled": "yes"}}},
    "/api/health": {"status": "ok", "version": SHA},
}


@pytest.fixture
def odd_backend() -> Iterator[tuple[str, dict[str, Any]]]:
    """A backend whose answers are not in the contract's shape (and which accepts any token)."""
    docs = json.loads(json.dumps(ODD_DOCS))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(docs.get(self.path, {})).encode()
            status = 200 if self.path in docs else 404
            if self.headers.get("authorization") is None:
                body, status = b'{"error": "no token"}', 200  # answers without a token: must be caught
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", docs
    server.shutdown()
    server.server_close()


def test_contract_violations_and_an_open_backend_fail(world: World, odd_backend: tuple[str, dict[str, Any]]) -> None:
    url, docs = odd_backend
    contract = PROBES["control-contract"]({}, world.context(TRADING_API_URL=url))
    assert contract.verdict is Verdict.FAIL and "web.kill_switch" in contract.reason
    rejects = PROBES["backend-rejects-unauthorized"]({}, world.context(TRADING_API_URL=url))
    assert rejects.verdict is Verdict.FAIL and "no token was accepted (HTTP 200)" in rejects.reason
    # Flags in shape, but the control document has no maintenance block: go condition 7 cannot pass.
    docs["/api/feature-flags"] = {"flags": {"web.kill_switch": {"enabled": True, "description": "web"}}}
    contract = PROBES["control-contract"]({}, world.context(TRADING_API_URL=url))
    assert contract.verdict is Verdict.FAIL
    assert "lacks the contract's maintenance, global.reason, global.updated_at" in contract.reason
    docs["/api/trading-control"] = {
        "global": {"halted": False, "reason": None, "updated_at": None, "updated_by": None},
        "scopes": [],
        "maintenance": {"enabled": False, "message": None},
        "revision": 3,
    }
    assert PROBES["control-contract"]({}, world.context(TRADING_API_URL=url)).verdict is Verdict.PASS


def test_audit_complete_passes_then_catches_a_gap_and_tampering(world: World) -> None:
    ctx = world.context()
    assert PROBES["audit-complete"]({}, ctx).verdict is Verdict.PASS
    approval_id = new_approval_id()
    with transaction(world.engine) as session:
        session.add(
            Approval(
                id=approval_id,
                action="halt",
                params="{}",
                params_hash="",
                requester="UOP",
                approve_role="halt_authority",
                channel="C1",
                status="executed",
                request_id="ops-x",
                created_at=utcnow(),
                expires_at=utcnow(),
            )
        )
    for step in ("requested", "executed"):  # no "approved" row
        ctx.audit.record(Entry(SYSTEM, f"halt.{step}", "accepted", {}, "ops-x", approval_id))
    gap = PROBES["audit-complete"]({}, ctx)
    assert gap.verdict is Verdict.FAIL and f"{approval_id} (halt) has no approved row" in gap.reason
    ctx.audit.record(Entry(SYSTEM, "halt.approved", "accepted", {}, "ops-x", approval_id))
    assert PROBES["audit-complete"]({}, ctx).verdict is Verdict.PASS
    with unguarded(world.database_url) as conn:
        conn.execute("UPDATE audit_event SET outcome = 'rewritten' WHERE seq = 2")
    tampered = PROBES["audit-complete"]({}, ctx)
    assert tampered.verdict is Verdict.FAIL and "audit chain broken at row 2" in tampered.reason


def test_rollback_clarity(world: World) -> None:
    clear = PROBES["rollback-clarity"]({}, world.context())
    assert clear.verdict is Verdict.PASS and "<@UOWNER>" in clear.reason and "rollback.yml" in clear.reason
    no_owner = PROBES["rollback-clarity"]({}, world.context(OPSBOT_ROLLBACK_OWNERS=""))
    assert no_owner.verdict is Verdict.FAIL and "no rollback owners configured" in no_owner.reason
    no_workflow = PROBES["rollback-clarity"]({}, world.context(OPSBOT_ROLLBACK_WORKFLOW=""))
    assert no_workflow.verdict is Verdict.FAIL and "no rollback workflow configured" in no_workflow.reason


def test_auth_source_ambiguity(world: World) -> None:
    assert PROBES["auth-source-ambiguous"]({}, world.context()).verdict is Verdict.PASS
    both = PROBES["auth-source-ambiguous"]({}, world.context(PLATFORM_JWT_PUBLIC_KEY=world.auth.public_pem()))
    assert both.verdict is Verdict.FAIL and "ambiguous" in both.reason
