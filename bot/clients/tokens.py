"""Bearer tokens for the trading backend (first configured source wins).

Token values are never logged: only which kind of source is in use and when it refreshes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import jwt

from bot.settings import Settings

logger = logging.getLogger("opsbot.tokens")

REFRESH_MARGIN_S = 30.0  # refresh this long before `exp`, so a token never expires in flight
HS256_LIFETIME_S = 300
SERVICE_SUBJECT = "svc:trading-opsbot"
# When a token endpoint gives neither `expires_in` nor a JWT `exp`, assume this lifetime.
DEFAULT_LIFETIME_S = 60.0

Clock = Callable[[], float]


class TokenError(Exception):
    """No token could be obtained; `retryable` is False when retrying cannot help (bad credentials)."""

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class TokenSource(Protocol):
    def token(self) -> str: ...


class StaticToken:
    """A ready token (PLATFORM_SERVICE_TOKEN); whoever issued it is responsible for rotating it."""

    kind = "static"

    def __init__(self, value: str) -> None:
        self._value = value

    def token(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


def jwt_expiry(token: str) -> float | None:
    """The `exp` of a JWT, read without verifying it (we only need to know when to refresh)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class _CachedToken:
    """Reuses a token until REFRESH_MARGIN_S before it expires; one refresh at a time."""

    kind = "cached"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        with self._lock:
            if self._value is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._value, self._expires_at = self._fetch()
                logger.info(
                    "obtained a %s token for the backend, valid for %.0f s", self.kind, self._expires_at - self._clock()
                )
            return self._value

    def _fetch(self) -> tuple[str, float]:
        """A new token and the time it expires at (on `clock`'s scale)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class Hs256Token(_CachedToken):
    """Mints a short-lived HS256 token with JWT_SECRET; never used in production."""

    kind = "HS256"

    def __init__(self, secret: str, issuer: str, *, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._secret = secret
        self._issuer = issuer

    def _fetch(self) -> tuple[str, float]:
        now = int(self._clock())
        exp = now + HS256_LIFETIME_S
        claims = {"iss": self._issuer, "sub": SERVICE_SUBJECT, "iat": now, "exp": exp}
        return jwt.encode(claims, self._secret, algorithm="HS256"), float(exp)


class ClientCredentialsToken(_CachedToken):
    """OAuth2 client-credentials grant against PLATFORM_TOKEN_URL."""

    kind = "client-credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.Client,
        *,
        clock: Clock = time.time,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(clock)
        self._url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        self._http = http
        self._timeout_s = timeout_s

    def _fetch(self) -> tuple[str, float]:
        try:
            response = self._http.post(
                self._url, data=self._form, timeout=self._timeout_s, headers={"accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint unreachable ({type(exc).__name__})", retryable=True) from exc
        if response.status_code != 200:
            retryable = response.status_code >= 500 or response.status_code == 429
            raise TokenError(f"token endpoint answered HTTP {response.status_code}", retryable=retryable)
        try:
            doc = response.json()
            token = doc["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("token endpoint answer has no access_token", retryable=False) from exc
        if not isinstance(token, str) or not token:
            raise TokenError("token endpoint answer has no access_token", retryable=False)
        return token, self._expiry(token, doc.get("expires_in"))

    def _expiry(self, token: str, expires_in: Any) -> float:
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            return self._clock() + float(expires_in)
        exp = jwt_expiry(token)
        return exp if exp is not None else self._clock() + DEFAULT_LIFETIME_S


def build_token_source(settings: Settings, http: httpx.Client) -> TokenSource | None:
    """The first configured source: service token, client credentials, then HS256 (not in production)."""
    source: TokenSource | None = None
    if settings.platform_service_token is not None:
        source = StaticToken(settings.platform_service_token.get_secret_value())
    elif settings.platform_token_url and settings.client_id and settings.client_secret is not None:
        source = ClientCredentialsToken(
            settings.platform_token_url, settings.client_id, settings.client_secret.get_secret_value(), http
        )
    elif settings.jwt_secret is not None and not settings.is_production:
        source = Hs256Token(settings.jwt_secret.get_secret_value(), settings.platform_jwt_issuer)
    elif settings.jwt_secret is not None:
        logger.warning("JWT_SECRET is set but HS256 minting is refused in production")
    logger.info("backend token source: %s", getattr(source, "kind", "none"))
    return source
