"""Release-gate probes about platform auth (runbook go condition 4, no-go 1; the backend's 401 rule).

Plain functions returning a ProbeResult. Tokens and secrets never appear in results or logs: only
which source was used, key ids, issuers, expiry times and x-request-ids.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.error import HTTPError, URLError

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

from bot.clients.tokens import TokenError, TokenSource
from bot.gate.result import ProbeResult, failed, passed, unknown
from bot.settings import Settings

logger = logging.getLogger("opsbot.probes.auth")

NOT_CONFIGURED = "platform auth not configured: set PLATFORM_JWT_JWKS_URL or PLATFORM_JWT_PUBLIC_KEY"
NO_BEARER_SOURCE = (
    "no token source: set PLATFORM_SERVICE_TOKEN, or PLATFORM_TOKEN_URL with OPSBOT_CLIENT_ID and OPSBOT_CLIENT_SECRET"
)
RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS = ("ES256", "ES384", "ES512")
# Only asymmetric algorithms: accepting HS* with a public key would let anyone who has it forge tokens.
ASYMMETRIC_ALGS = frozenset((*RSA_ALGS, *EC_ALGS, "EdDSA"))
GATEWAY_STATUSES = frozenset({502, 503, 504})  # the backend itself did not answer: cannot tell
JWKS_LIFESPAN_S = 300.0


class _Stop(Exception):
    """Carries a probe's final result out of a helper, so each step stays a short function."""

    def __init__(self, result: ProbeResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(frozen=True)
class _Key:
    key: Any  # a cryptography public key object
    algorithms: tuple[str, ...]
    source: str  # what the operator reads: "JWKS (kid …)" or "PLATFORM_JWT_PUBLIC_KEY"
    evidence: str


def _timed(started: float, result: ProbeResult, name: str) -> ProbeResult:
    elapsed_ms = (time.monotonic() - started) * 1000
    logger.info("probe %s: %s in %.0f ms (%s)", name, result.verdict, elapsed_ms, result.reason)
    return result.took(elapsed_ms)


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jwks_client(url: str, *, timeout_s: float) -> jwt.PyJWKClient:
    """A JWKS client whose cache may be shared between gate evaluations.

    No refresh cooldown: an unknown `kid` (the platform rotated its key) refetches the set at once.
    The tokens checked here come from our own token source, so nobody can use that to flood the JWKS.
    """
    return jwt.PyJWKClient(url, timeout=timeout_s, lifespan=JWKS_LIFESPAN_S, cooldown_duration=0)


def platform_auth_reachable(
    *,
    settings: Settings,
    tokens: TokenSource | None,
    http: httpx.Client,
    timeout_s: float,
    jwks: jwt.PyJWKClient | None = None,
) -> ProbeResult:
    """Go condition 4: a token from `tokens` verifies (signature, `iss`, `exp`) against the platform key.

    The key is the JWKS at PLATFORM_JWT_JWKS_URL (preferred when both are set: the ambiguity is
    `auth_source_ambiguous`'s finding) or the PEM in PLATFORM_JWT_PUBLIC_KEY. Without `jwks` the set is
    fetched afresh, which proves it reachable; a shared `jwks_client()` answers from its cache for up to
    JWKS_LIFESPAN_S. `http` is unused (PyJWKClient has its own urllib client): all probes take it.
    """
    started = time.monotonic()
    try:
        result = _check_platform_auth(settings, tokens, timeout_s, jwks)
    except _Stop as stop:
        result = stop.result
    return _timed(started, result, "platform-auth-reachable")


def _check_platform_auth(
    settings: Settings, tokens: TokenSource | None, timeout_s: float, jwks: jwt.PyJWKClient | None
) -> ProbeResult:
    if not settings.platform_auth_enabled:
        return unknown("platform auth is switched off (PLATFORM_AUTH_ENABLED=false): nothing to verify")
    url, pem = settings.platform_jwt_jwks_url, settings.platform_jwt_public_key
    if not url and not pem:
        return unknown(NOT_CONFIGURED)
    if tokens is None:
        return unknown(NO_BEARER_SOURCE)
    kind = str(getattr(tokens, "kind", type(tokens).__name__))
    token = _obtain(tokens, kind)
    if url:
        key = _jwks_key(jwks or _new_jwks_client(url, timeout_s), url, _kid(token, kind), timeout_s)
    else:
        key = _pem_key(pem or "")
    claims = _verify(token, key, settings.platform_jwt_issuer, kind)
    expires_in = int(float(claims["exp"]) - time.time())
    return passed(
        f"token from {kind} verified against {key.source}",
        f"{key.evidence}; iss {_short(claims['iss'])}; expires in {expires_in} s",
    )


def _new_jwks_client(url: str, timeout_s: float) -> jwt.PyJWKClient:
    try:
        return jwks_client(url, timeout_s=timeout_s)
    except PyJWKClientError as exc:  # e.g. a scheme other than http(s)
        raise _Stop(failed(f"PLATFORM_JWT_JWKS_URL is not usable: {exc}")) from exc


def _obtain(tokens: TokenSource, kind: str) -> str:
    try:
        return tokens.token()
    except TokenError as exc:
        make = unknown if exc.retryable else failed  # bad credentials will not fix themselves
        raise _Stop(make(f"no token from {kind}: {exc.detail}")) from exc


def _kid(token: str, kind: str) -> str:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise _Stop(failed(f"token from {kind} is not a JWT")) from exc
    if not isinstance(kid, str) or not kid:
        raise _Stop(failed(f"token from {kind} has no kid header, so no JWKS key can be chosen"))
    return kid


def _jwks_key(client: jwt.PyJWKClient, url: str, kid: str, timeout_s: float) -> _Key:
    step = "fetch"
    try:
        client.get_signing_keys()  # fetch (or reuse) the set first: unreachable and malformed show here
        step = "match"
        jwk = client.get_signing_key(kid)  # an unknown kid refetches the set once (key rotation)
    except PyJWKClientConnectionError as exc:
        raise _Stop(_jwks_unreachable(exc, url, timeout_s)) from exc
    except jwt.PyJWTError as exc:
        problem = f"has no key matching the token's kid {_short(kid)}" if step == "match" else f"is unusable: {exc}"
        raise _Stop(failed(f"JWKS at {url} {problem}", url)) from exc
    if jwk.algorithm_name not in ASYMMETRIC_ALGS:
        raise _Stop(failed(f"JWKS key {_short(kid)} is {jwk.algorithm_name}, not an asymmetric signing key", url))
    return _Key(jwk.key, (jwk.algorithm_name,), f"JWKS (kid {_short(kid)})", url)


def _jwks_unreachable(exc: PyJWKClientConnectionError, url: str, timeout_s: float) -> ProbeResult:
    cause = exc.__cause__
    if isinstance(cause, HTTPError):
        make = unknown if cause.code >= 500 else failed  # a 4xx is a wrong URL, not an outage
        return make(f"JWKS at {url} answered HTTP {cause.code}", url)
    reason = cause.reason if isinstance(cause, URLError) else cause
    if isinstance(reason, TimeoutError):
        return unknown(f"JWKS at {url} timed out after {timeout_s:g} s", url)
    return unknown(f"JWKS at {url} unreachable: {_short(reason or exc)}", url)


def _pem_key(pem: str) -> _Key:
    text = pem.replace("\\n", "\n").strip()  # env files often carry the PEM on one line with literal \n
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _Stop(failed("PLATFORM_JWT_PUBLIC_KEY is not a PEM public key")) from exc
    if isinstance(key, rsa.RSAPublicKey):
        algorithms: tuple[str, ...] = RSA_ALGS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        algorithms = EC_ALGS
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        algorithms = ("EdDSA",)
    else:
        raise _Stop(failed(f"PLATFORM_JWT_PUBLIC_KEY is a {type(key).__name__}, which cannot verify JWTs"))
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _Key(key, algorithms, "PLATFORM_JWT_PUBLIC_KEY", f"key sha256:{hashlib.sha256(der).hexdigest()[:16]}")


def _verify(token: str, key: _Key, issuer: str, kind: str) -> dict[str, Any]:
    seen = _unverified_claims(token)
    try:
        # The audience is the backend's business; this probe checks signature, issuer and expiry.
        return jwt.decode(
            token,
            key.key,
            algorithms=list(key.algorithms),
            issuer=issuer,
            options={"require": ["exp", "iss"], "verify_aud": False},
        )
    except jwt.InvalidAlgorithmError as exc:
        alg = _short(jwt.get_unverified_header(token).get("alg"))
        raise _Stop(
            failed(f"token from {kind} is signed with {alg}, which {key.source} cannot verify", key.evidence)
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise _Stop(failed(f"token from {kind} has a bad signature: not signed by {key.source}", key.evidence)) from exc
    except jwt.InvalidIssuerError as exc:
        raise _Stop(
            failed(
                f"token from {kind} has issuer {_short(seen.get('iss'))!r}, expected {issuer!r} (PLATFORM_JWT_ISSUER)",
                key.evidence,
            )
        ) from exc
    except jwt.ExpiredSignatureError as exc:
        raise _Stop(failed(f"token from {kind} expired at {_iso(seen.get('exp'))}", key.evidence)) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _Stop(failed(f"token from {kind} has no {exc.claim} claim", key.evidence)) from exc
    except jwt.DecodeError as exc:
        raise _Stop(failed(f"token from {kind} is not a JWT", key.evidence)) from exc
    except jwt.PyJWTError as exc:
        raise _Stop(failed(f"token from {kind} rejected: {_short(exc, 160)}", key.evidence)) from exc


def _unverified_claims(token: str) -> dict[str, Any]:
    """Claims read without verification, only to explain a failure; decisions come from jwt.decode."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


def _iso(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return _short(epoch)


def auth_source_ambiguous(settings: Settings, *, production: bool | None = None) -> ProbeResult:
    """PASS when the auth source is unambiguous; FAIL (the no-go holds) naming the variables at fault.

    `production` overrides `settings.is_production`: Settings refuses JWT_SECRET in production at
    construction, so the JWT_SECRET rule is otherwise only reachable with staging values.
    """
    started = time.monotonic()
    is_production = settings.is_production if production is None else production
    has_pem, has_jwks = bool(settings.platform_jwt_public_key), bool(settings.platform_jwt_jwks_url)
    problems: list[str] = []
    if has_pem and has_jwks:
        problems.append("both PLATFORM_JWT_PUBLIC_KEY and PLATFORM_JWT_JWKS_URL are set (set exactly one)")
    elif not has_pem and not has_jwks:
        problems.append("neither PLATFORM_JWT_PUBLIC_KEY nor PLATFORM_JWT_JWKS_URL is set (set exactly one)")
    if is_production and settings.jwt_secret is not None:
        problems.append("JWT_SECRET is set in production (HS256 is for compatibility environments only)")
    if problems:
        result = failed("auth source of truth is ambiguous: " + "; ".join(problems))
    else:
        name = "PLATFORM_JWT_JWKS_URL" if has_jwks else "PLATFORM_JWT_PUBLIC_KEY"
        note = "JWT_SECRET also set, allowed outside production" if settings.jwt_secret is not None else ""
        result = passed(f"auth source of truth is unambiguous: {name}", note)
    return _timed(started, result, "auth-source-ambiguous")


def _forged_cases(issuer: str) -> list[tuple[str, str, str | None]]:
    """(what, request-id suffix, Authorization header). Only the signature is wrong in the forged
    tokens (issuer and expiry are valid), so a backend that skips the signature check is caught."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": "svc:opsbot-gate-probe", "iat": now, "exp": now + 120}
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    hs256 = jwt.encode(claims, secrets.token_urlsafe(32), algorithm="HS256")
    rs256 = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "opsbot-gate-probe-forged"})
    return [
        ("no token", "noauth", None),
        ("HS256 token signed with a random secret (bad signature)", "hs256", f"Bearer {hs256}"),
        ("RS256 token signed by an unknown key (bad signature)", "rs256", f"Bearer {rs256}"),
    ]


def _status(http: httpx.Client, url: str, request_id: str, authorization: str | None, timeout_s: float) -> int | str:
    """The status answered, or a short reason the backend did not answer."""
    request = http.build_request(
        "GET", url, timeout=timeout_s, headers={"x-request-id": request_id, "accept": "application/json"}
    )
    request.headers.pop("authorization", None)  # the client may carry a default token; this case must not
    if authorization is not None:
        request.headers["authorization"] = authorization
    try:
        return http.send(request).status_code
    except httpx.TimeoutException:
        return f"timed out after {timeout_s:g} s"
    except httpx.TransportError as exc:
        return f"unreachable ({type(exc).__name__})"


def backend_rejects_unauthorized(
    *,
    base_url: str | None,
    http: httpx.Client,
    request_id: str,
    timeout_s: float,
    issuer: str = "platform-service",
) -> ProbeResult:
    """`GET /api/trading-control` with no token, a random-secret HS256 token and an unknown-key RS256
    token: each must get 401. `issuer` should be PLATFORM_JWT_ISSUER so only the signature is wrong."""
    started = time.monotonic()
    if not base_url:
        return _timed(
            started,
            unknown("TRADING_API_URL is not set: cannot check that bad tokens get 401"),
            "backend-rejects-unauthorized",
        )
    url = base_url.rstrip("/") + "/api/trading-control"
    outcomes = [
        (what, f"{request_id}-{suffix}", _status(http, url, f"{request_id}-{suffix}", auth, timeout_s))
        for what, suffix, auth in _forged_cases(issuer)
    ]
    evidence = "x-request-id " + ", ".join(f"{rid}: {status}" for _, rid, status in outcomes)
    wrong = [
        f"{what} was accepted (HTTP {s})" if 200 <= s < 300 else f"{what} got HTTP {s}, not 401"
        for what, _, s in outcomes
        if isinstance(s, int) and s != 401 and s not in GATEWAY_STATUSES
    ]
    silent = [
        f"{what}: {s if isinstance(s, str) else f'HTTP {s}'}"
        for what, _, s in outcomes
        if not isinstance(s, int) or s in GATEWAY_STATUSES
    ]
    if wrong:
        result = failed("backend does not reject unauthorized requests: " + "; ".join(wrong), evidence)
    elif silent:
        result = unknown(f"backend at {base_url} did not answer: " + "; ".join(silent), evidence)
    else:
        result = passed("backend answered 401 to no token and to bad-signature HS256 and RS256 tokens", evidence)
    return _timed(started, result, "backend-rejects-unauthorized")
