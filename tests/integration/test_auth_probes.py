"""Auth probes of the release gate, against real loopback servers: rehearsal.sim.jwks and rehearsal.sim.backend."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.clients.backend import TradingBackend
from bot.clients.tokens import ClientCredentialsToken, StaticToken, TokenSource
from bot.gate.probe_auth import (
    NOT_CONFIGURED,
    auth_source_ambiguous,
    backend_rejects_unauthorized,
    jwks_client,
    platform_auth_reachable,
)
from bot.gate.result import ProbeResult, Verdict, failed
from bot.settings import Settings
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.jwks import JWKS_PATH, SimPlatformAuth

CLIENT_ID = "trading-opsbot"
CLIENT_SECRET = "probe-test-client-secret-0123456789"
HS_SECRET = "probe-test-hs256-secret-0123456789-abcdef"
AUTH_ENV = (
    "PLATFORM_AUTH_ENABLED",
    "PLATFORM_JWT_ISSUER",
    "PLATFORM_JWT_PUBLIC_KEY",
    "PLATFORM_JWT_JWKS_URL",
    "JWT_SECRET",
    "OPSBOT_ENV",
    "PLATFORM_SERVICE_TOKEN",
    "PLATFORM_TOKEN_URL",
    "OPSBOT_CLIENT_ID",
    "OPSBOT_CLIENT_SECRET",
    "TRADING_API_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


@pytest.fixture
def platform() -> Iterator[SimPlatformAuth]:
    with SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        yield sim


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def client_credentials(
    platform: SimPlatformAuth, http: httpx.Client, secret: str = CLIENT_SECRET
) -> ClientCredentialsToken:
    return ClientCredentialsToken(platform.token_url, CLIENT_ID, secret, http, timeout_s=2.0)


def probe(
    platform: SimPlatformAuth,
    http: httpx.Client,
    tokens: TokenSource | None,
    *,
    timeout_s: float = 2.0,
    jwks: jwt.PyJWKClient | None = None,
    env: dict[str, str] | None = None,
) -> ProbeResult:
    """The reachability probe; by default against the platform's JWKS."""
    values = {"PLATFORM_JWT_JWKS_URL": platform.jwks_url} if env is None else env
    return platform_auth_reachable(
        settings=settings(**values), tokens=tokens, http=http, timeout_s=timeout_s, jwks=jwks
    )


def foreign_token(kid: str, issuer: str = "platform-service") -> str:
    """Right kid, issuer and expiry, but signed by a key the platform never published."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        {"iss": issuer, "sub": "svc:x", "exp": 2_000_000_000}, stranger, algorithm="RS256", headers={"kid": kid}
    )


# --- platform_auth_reachable (go condition 4) ---------------------------------------------------------


def test_client_credentials_token_verifies_against_jwks(
    platform: SimPlatformAuth, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = client_credentials(platform, http)
    result = probe(platform, http, tokens)
    assert result.verdict is Verdict.PASS, result
    assert result.reason == f"token from client-credentials verified against JWKS (kid {platform.current_kid})"
    assert platform.jwks_url in result.evidence and result.elapsed_ms > 0
    token = tokens.token()
    for text in (result.reason, result.evidence, caplog.text):
        assert token not in text and CLIENT_SECRET not in text


def test_client_credentials_token_verifies_against_pem(platform: SimPlatformAuth, http: httpx.Client) -> None:
    result = probe(
        platform, http, client_credentials(platform, http), env={"PLATFORM_JWT_PUBLIC_KEY": platform.public_pem()}
    )
    assert result.verdict is Verdict.PASS, result
    assert result.reason == "token from client-credentials verified against PLATFORM_JWT_PUBLIC_KEY"
    assert result.evidence.startswith("key sha256:")
    one_line = platform.public_pem().strip().replace("\n", "\\n")  # as it often sits in an env file
    assert (
        probe(platform, http, client_credentials(platform, http), env={"PLATFORM_JWT_PUBLIC_KEY": one_line}).verdict
        is Verdict.PASS
    )


def test_wrong_issuer_fails_naming_both_issuers(platform: SimPlatformAuth, http: httpx.Client) -> None:
    result = probe(platform, http, StaticToken(platform.mint("svc:x", issuer="someone-else")))
    assert result.verdict is Verdict.FAIL
    assert "'someone-else'" in result.reason and "'platform-service'" in result.reason
    assert "PLATFORM_JWT_ISSUER" in result.reason


@pytest.mark.parametrize("source", ["jwks", "pem"])
def test_token_signed_by_another_key_fails(platform: SimPlatformAuth, http: httpx.Client, source: str) -> None:
    env = (
        {"PLATFORM_JWT_JWKS_URL": platform.jwks_url}
        if source == "jwks"
        else {"PLATFORM_JWT_PUBLIC_KEY": platform.public_pem()}
    )
    result = probe(platform, http, StaticToken(foreign_token(platform.current_kid)), env=env)
    assert result.verdict is Verdict.FAIL
    assert "bad signature" in result.reason


def test_expired_and_hs256_tokens_fail(platform: SimPlatformAuth, http: httpx.Client) -> None:
    expired = probe(platform, http, StaticToken(platform.mint("svc:x", expires_in=-60)))
    assert expired.verdict is Verdict.FAIL and "expired at" in expired.reason
    hs256 = jwt.encode({"iss": "platform-service", "exp": 2_000_000_000}, HS_SECRET, algorithm="HS256")
    confused = probe(platform, http, StaticToken(hs256), env={"PLATFORM_JWT_PUBLIC_KEY": platform.public_pem()})
    assert confused.verdict is Verdict.FAIL and "signed with HS256" in confused.reason


def test_kid_missing_from_jwks_fails(platform: SimPlatformAuth, http: httpx.Client) -> None:
    old = platform.current_kid
    platform.rotate(keep_old=False)
    result = probe(platform, http, StaticToken(platform.mint("svc:x", kid=old)))
    assert result.verdict is Verdict.FAIL
    assert f"no key matching the token's kid {old}" in result.reason


def test_rotated_key_is_fetched_once_by_a_cached_client(platform: SimPlatformAuth, http: httpx.Client) -> None:
    shared = jwks_client(platform.jwks_url, timeout_s=2.0)
    first = probe(platform, http, client_credentials(platform, http), jwks=shared)
    assert first.verdict is Verdict.PASS and platform.calls(JWKS_PATH) == 1
    assert probe(platform, http, client_credentials(platform, http), jwks=shared).verdict is Verdict.PASS
    assert platform.calls(JWKS_PATH) == 1  # same kid: answered from the cache
    new_kid = platform.rotate(keep_old=False)
    rotated = probe(platform, http, client_credentials(platform, http), jwks=shared)
    assert rotated.verdict is Verdict.PASS, rotated
    assert f"kid {new_kid}" in rotated.reason
    assert platform.calls(JWKS_PATH) == 2  # the unknown kid refetched the set once
    fresh = probe(platform, http, client_credentials(platform, http))  # no shared client: fetched afresh
    assert fresh.verdict is Verdict.PASS and platform.calls(JWKS_PATH) == 3


def test_unreachable_jwks_is_unknown(platform: SimPlatformAuth, http: httpx.Client) -> None:
    token, url = platform.mint("svc:x"), platform.jwks_url
    platform.stop()
    result = probe(platform, http, StaticToken(token), env={"PLATFORM_JWT_JWKS_URL": url})
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason.startswith(f"JWKS at {url} unreachable") and "refused" in result.reason.lower()


def test_slow_jwks_is_unknown_timed_out(platform: SimPlatformAuth, http: httpx.Client) -> None:
    platform.faults.latency_s = 2.0
    result = probe(platform, http, StaticToken(platform.mint("svc:x")), timeout_s=0.2)
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason == f"JWKS at {platform.jwks_url} timed out after 0.2 s"
    assert result.elapsed_ms < 1500


def test_jwks_server_error_is_unknown_and_not_found_fails(platform: SimPlatformAuth, http: httpx.Client) -> None:
    token = StaticToken(platform.mint("svc:x"))
    platform.faults.fail_status = 503
    outage = probe(platform, http, token)
    assert outage.verdict is Verdict.UNKNOWN and "answered HTTP 503" in outage.reason
    platform.faults.fail_status = None
    wrong_url = probe(platform, http, token, env={"PLATFORM_JWT_JWKS_URL": platform.url + "/jwks"})
    assert wrong_url.verdict is Verdict.FAIL and "answered HTTP 404" in wrong_url.reason


def test_not_configured_or_no_token_source_is_unknown(platform: SimPlatformAuth, http: httpx.Client) -> None:
    token = StaticToken(platform.mint("svc:x"))
    unconfigured = probe(platform, http, token, env={})
    assert unconfigured.verdict is Verdict.UNKNOWN and unconfigured.reason == NOT_CONFIGURED
    no_source = probe(platform, http, None)
    assert no_source.verdict is Verdict.UNKNOWN and "PLATFORM_SERVICE_TOKEN" in no_source.reason
    disabled = probe(
        platform, http, token, env={"PLATFORM_JWT_JWKS_URL": platform.jwks_url, "PLATFORM_AUTH_ENABLED": "false"}
    )
    assert disabled.verdict is Verdict.UNKNOWN and "PLATFORM_AUTH_ENABLED=false" in disabled.reason


def test_token_endpoint_refusing_the_client_fails_and_an_outage_is_unknown(
    platform: SimPlatformAuth, http: httpx.Client
) -> None:
    refused = probe(platform, http, client_credentials(platform, http, secret="wrong-secret"))
    assert refused.verdict is Verdict.FAIL
    assert refused.reason == "no token from client-credentials: token endpoint answered HTTP 401"
    platform.faults.fail_status = 503
    outage = probe(platform, http, client_credentials(platform, http))
    assert outage.verdict is Verdict.UNKNOWN and "HTTP 503" in outage.reason


# --- auth_source_ambiguous (no-go 1) ------------------------------------------------------------------

PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
JWKS = "https://platform.example/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("env", "production", "named"),
    [
        (
            {"PLATFORM_JWT_PUBLIC_KEY": PEM, "PLATFORM_JWT_JWKS_URL": JWKS},
            False,
            ["both PLATFORM_JWT_PUBLIC_KEY and PLATFORM_JWT_JWKS_URL"],
        ),
        ({}, False, ["neither PLATFORM_JWT_PUBLIC_KEY nor PLATFORM_JWT_JWKS_URL"]),
        ({"PLATFORM_JWT_JWKS_URL": JWKS, "JWT_SECRET": HS_SECRET}, True, ["JWT_SECRET is set in production"]),
        (
            {"PLATFORM_JWT_PUBLIC_KEY": PEM, "PLATFORM_JWT_JWKS_URL": JWKS, "JWT_SECRET": HS_SECRET},
            True,
            ["both PLATFORM_JWT_PUBLIC_KEY and PLATFORM_JWT_JWKS_URL", "JWT_SECRET is set in production"],
        ),
    ],
    ids=["both", "neither", "jwt-secret-in-production", "both-and-jwt-secret"],
)
def test_ambiguous_auth_source_fails_naming_the_variables(
    env: dict[str, str], production: bool, named: list[str]
) -> None:
    result = auth_source_ambiguous(settings(OPSBOT_ENV="staging", **env), production=production)
    assert result.verdict is Verdict.FAIL
    assert result.reason.startswith("auth source of truth is ambiguous: ")
    assert all(name in result.reason for name in named), result.reason
    assert HS_SECRET not in result.reason + result.evidence


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PLATFORM_JWT_JWKS_URL": JWKS}, "PLATFORM_JWT_JWKS_URL"),
        ({"PLATFORM_JWT_PUBLIC_KEY": PEM}, "PLATFORM_JWT_PUBLIC_KEY"),
    ],
)
def test_exactly_one_key_source_passes(env: dict[str, str], name: str) -> None:
    result = auth_source_ambiguous(settings(OPSBOT_ENV="staging", **env), production=True)
    assert result.verdict is Verdict.PASS
    assert result.reason == f"auth source of truth is unambiguous: {name}"


def test_jwt_secret_outside_production_is_not_ambiguous() -> None:
    staging = settings(OPSBOT_ENV="staging", PLATFORM_JWT_JWKS_URL=JWKS, JWT_SECRET=HS_SECRET)
    result = auth_source_ambiguous(staging)  # is_production from settings: False
    assert result.verdict is Verdict.PASS and "JWT_SECRET also set" in result.evidence
    assert auth_source_ambiguous(staging, production=True).verdict is Verdict.FAIL


# --- backend_rejects_unauthorized (go condition 8; the backend's 401 rule) ------------------------------------


def reject_probe(url: str | None, http: httpx.Client, timeout_s: float = 2.0) -> ProbeResult:
    return backend_rejects_unauthorized(base_url=url, http=http, request_id="gate-7", timeout_s=timeout_s)


def test_backend_with_a_secret_rejects_all_three(http: httpx.Client) -> None:
    with SimBackend(jwt_secret=HS_SECRET) as backend:
        result = reject_probe(backend.url, http)
        assert result.verdict is Verdict.PASS, result
        assert result.evidence == "x-request-id gate-7-noauth: 401, gate-7-hs256: 401, gate-7-rs256: 401"
        sent = backend.calls("GET", "/api/trading-control")
    assert [r.headers["x-request-id"] for r in sent] == ["gate-7-noauth", "gate-7-hs256", "gate-7-rs256"]


def test_rs256_backend_accepts_the_platform_token_and_rejects_forgeries(
    platform: SimPlatformAuth, http: httpx.Client
) -> None:
    tokens = client_credentials(platform, http)
    with SimBackend(jwt_public_key=platform.public_pem()) as backend:
        reply = TradingBackend(base_url=backend.url, tokens=tokens, http=http).trading_control(request_id="r-1")
        assert reply.status == 200 and reply.echoed
        assert reject_probe(backend.url, http).verdict is Verdict.PASS
    assert probe(platform, http, tokens).verdict is Verdict.PASS


def test_permissive_backend_fails_naming_the_bad_signature_cases(http: httpx.Client) -> None:
    # The client's default token must not leak into the "no token" case.
    with SimBackend() as backend, httpx.Client(headers={"authorization": "Bearer default"}) as client:
        result = reject_probe(backend.url, client)
        no_token = backend.calls("GET", "/api/trading-control")[0]
    assert result.verdict is Verdict.FAIL
    assert "HS256 token signed with a random secret (bad signature) was accepted (HTTP 200)" in result.reason
    assert "RS256 token signed by an unknown key (bad signature) was accepted (HTTP 200)" in result.reason
    assert "no token" not in result.reason  # the permissive sim still wants some bearer
    assert "authorization" not in no_token.headers


def test_backend_answering_other_than_401_fails(http: httpx.Client) -> None:
    with SimBackend(jwt_secret=HS_SECRET) as backend:
        backend.faults.fail_status = 500
        result = reject_probe(backend.url, http)
    assert result.verdict is Verdict.FAIL and "no token got HTTP 500, not 401" in result.reason


def test_backend_down_or_unset_is_unknown(http: httpx.Client) -> None:
    with SimBackend(jwt_secret=HS_SECRET) as backend:
        url = backend.url
    down = reject_probe(url, http)
    assert down.verdict is Verdict.UNKNOWN and down.reason.startswith(f"backend at {url} did not answer")
    assert "gate-7-noauth: unreachable (ConnectError)" in down.evidence
    unset = reject_probe(None, http)
    assert unset.verdict is Verdict.UNKNOWN and "TRADING_API_URL is not set" in unset.reason
    with SimBackend(jwt_secret=HS_SECRET) as backend:
        backend.faults.latency_s = 2.0
        slow = reject_probe(backend.url, http, timeout_s=0.2)
    assert slow.verdict is Verdict.UNKNOWN and "timed out after 0.2 s" in slow.reason


def test_results_are_one_line() -> None:
    result = failed("JWKS unusable:\n  bad key\n", "x-request-id\tr-1")
    assert result == ProbeResult(Verdict.FAIL, "JWKS unusable: bad key", "x-request-id r-1")
    assert result.took(12.5).elapsed_ms == 12.5 and str(Verdict.UNKNOWN) == "unknown"
