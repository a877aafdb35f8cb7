"""Token sources: the right one is chosen, tokens are reused until shortly before expiry, never leaked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from pydantic import SecretStr

from bot.clients.backend import TradingBackend
from bot.clients.tokens import (
    ClientCredentialsToken,
    Hs256Token,
    StaticToken,
    TokenError,
    build_token_source,
)
from bot.settings import Environment, Settings
from rehearsal.sim.backend import SimBackend

SECRET = "tokens-test-secret-0123456789-abcdef"
TOKEN_ENV = (
    "PLATFORM_SERVICE_TOKEN",
    "PLATFORM_TOKEN_URL",
    "OPSBOT_CLIENT_ID",
    "OPSBOT_CLIENT_SECRET",
    "JWT_SECRET",
    "OPSBOT_ENV",
    "PLATFORM_JWT_ISSUER",
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class TokenEndpoint:
    """A tiny OAuth2 token endpoint: records each form it receives and answers `answer`."""

    url: str = ""
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"token_type": "Bearer", "expires_in": 120})
    delay_s: float = 0.0


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    state = TokenEndpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
            state.forms.append(form)
            time.sleep(state.delay_s)
            body = json.dumps({"access_token": f"opaque-{len(state.forms)}", **state.answer}).encode()
            self.send_response(state.status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/oauth/token"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_static_token_is_returned_as_is_and_not_shown_in_repr() -> None:
    source = StaticToken("svc-token-value")
    assert source.token() == "svc-token-value"
    assert "svc-token-value" not in repr(source)


def test_hs256_token_has_the_contract_claims_and_passes_the_backend() -> None:
    token = Hs256Token(SECRET, "platform-service").token()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="platform-service")
    assert claims["sub"] == "svc:trading-opsbot" and claims["exp"] - claims["iat"] == 300
    with SimBackend(jwt_secret=SECRET) as sim:
        client = TradingBackend(base_url=sim.url, tokens=Hs256Token(SECRET, "platform-service"))
        assert client.health(request_id="req-1").status == 200
        client.close()


def test_hs256_token_is_reused_until_30s_before_exp() -> None:
    clock = FakeClock()
    source = Hs256Token(SECRET, "platform-service", clock=clock)
    first = source.token()
    clock.now += 269
    assert source.token() == first
    clock.now += 1  # now exp - 30
    second = source.token()
    assert second != first
    claims = jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["iat"] == int(clock.now)


def test_client_credentials_posts_the_grant_and_caches_by_expires_in(
    endpoint: TokenEndpoint, http: httpx.Client
) -> None:
    clock = FakeClock()
    source = ClientCredentialsToken(endpoint.url, "opsbot", "s3cret", http, clock=clock)
    assert source.token() == "opaque-1"
    assert endpoint.forms == [
        {"grant_type": ["client_credentials"], "client_id": ["opsbot"], "client_secret": ["s3cret"]}
    ]
    clock.now += 89
    assert source.token() == "opaque-1"
    clock.now += 1  # expires_in 120 minus the 30 s margin
    assert source.token() == "opaque-2"
    assert len(endpoint.forms) == 2


def test_client_credentials_falls_back_to_the_jwt_exp(endpoint: TokenEndpoint, http: httpx.Client) -> None:
    clock = FakeClock()
    endpoint.answer = {"access_token": jwt.encode({"exp": int(clock.now) + 45}, "k" * 32)}
    source = ClientCredentialsToken(endpoint.url, "opsbot", "s3cret", http, clock=clock)
    first = source.token()
    clock.now += 14
    assert source.token() == first
    clock.now += 1
    source.token()
    assert len(endpoint.forms) == 2


def test_concurrent_callers_share_one_fetch(endpoint: TokenEndpoint, http: httpx.Client) -> None:
    endpoint.delay_s = 0.1
    source = ClientCredentialsToken(endpoint.url, "opsbot", "s3cret", http)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(source.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["opaque-1"] * 8
    assert len(endpoint.forms) == 1


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (400, False), (503, True), (500, True)])
def test_token_endpoint_errors_say_whether_a_retry_can_help(
    endpoint: TokenEndpoint, http: httpx.Client, status: int, retryable: bool
) -> None:
    endpoint.status = status
    with pytest.raises(TokenError) as caught:
        ClientCredentialsToken(endpoint.url, "opsbot", "s3cret", http).token()
    assert caught.value.retryable is retryable and str(status) in caught.value.detail
    assert "s3cret" not in caught.value.detail


def test_unreachable_token_endpoint_is_retryable(http: httpx.Client) -> None:
    with SimBackend() as dead:
        url = dead.url + "/oauth/token"
    with pytest.raises(TokenError) as caught:
        ClientCredentialsToken(url, "opsbot", "s3cret", http).token()
    assert caught.value.retryable


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


CLIENT_CREDENTIALS = {
    "PLATFORM_TOKEN_URL": "http://127.0.0.1:9/token",
    "OPSBOT_CLIENT_ID": "opsbot",
    "OPSBOT_CLIENT_SECRET": "s3cret",
}


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PLATFORM_SERVICE_TOKEN": "svc", **CLIENT_CREDENTIALS, "JWT_SECRET": SECRET}, StaticToken),
        ({**CLIENT_CREDENTIALS, "JWT_SECRET": SECRET}, ClientCredentialsToken),
        (
            {"PLATFORM_TOKEN_URL": "http://127.0.0.1:9/token", "OPSBOT_CLIENT_ID": "opsbot", "JWT_SECRET": SECRET},
            Hs256Token,
        ),
        ({"JWT_SECRET": SECRET, "OPSBOT_ENV": "staging"}, Hs256Token),
        ({}, type(None)),
    ],
    ids=["service-token-first", "client-credentials-next", "incomplete-credentials", "hs256", "none"],
)
def test_first_configured_source_wins(http: httpx.Client, env: dict[str, str], expected: type) -> None:
    assert type(build_token_source(settings(**env), http)) is expected


@pytest.mark.usefixtures("clean_env")
def test_hs256_token_uses_the_configured_issuer(http: httpx.Client) -> None:
    source = build_token_source(settings(JWT_SECRET=SECRET, PLATFORM_JWT_ISSUER="issuer-x"), http)
    assert source is not None
    assert jwt.decode(source.token(), SECRET, algorithms=["HS256"], issuer="issuer-x")


def test_production_never_mints_hs256(http: httpx.Client) -> None:
    # Settings refuses JWT_SECRET in production at construction; this guards the second line of defence.
    prod = Settings.model_construct(env=Environment.PRODUCTION, jwt_secret=SecretStr(SECRET))
    assert build_token_source(prod, http) is None
    prod_with_token = Settings.model_construct(
        env=Environment.PRODUCTION, jwt_secret=SecretStr(SECRET), platform_service_token=SecretStr("svc")
    )
    source = build_token_source(prod_with_token, http)
    assert isinstance(source, StaticToken) and source.token() == "svc"
