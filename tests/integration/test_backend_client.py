"""The backend client against the simulated backend on loopback: what an operator sees per failure mode."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.clients.backend import TradingBackend, TradingControl
from bot.clients.backend_errors import BackendNotConfigured, BackendRejected, BackendUnavailable
from bot.clients.tokens import Hs256Token, StaticToken, TokenError
from rehearsal.sim.backend import SimBackend

SECRET = "client-test-secret-0123456789-abcdef"
HALT = "/api/trading-control/halt"


@pytest.fixture
def sim() -> Iterator[SimBackend]:
    with SimBackend(jwt_secret=SECRET) as backend:
        yield backend


def make_client(url: str | None, tokens: Any = None, timeout_s: float = 0.3) -> TradingBackend:
    return TradingBackend(
        base_url=url,
        tokens=tokens or Hs256Token(SECRET, "platform-service"),
        read_timeout_s=timeout_s,
        write_timeout_s=timeout_s,
        connect_timeout_s=timeout_s,
    )


@pytest.fixture
def backend(sim: SimBackend) -> Iterator[TradingBackend]:
    client = make_client(sim.url)
    yield client
    client.close()


def halt(backend: TradingBackend, scope: str = "tenant:acme", key: str = "appr-1:halt") -> Any:
    return backend.halt(scope=scope, reason="bad fills", actor="U1", request_id="req-1", idempotency_key=key)


def test_reads_are_typed_and_carry_token_and_request_id(sim: SimBackend, backend: TradingBackend) -> None:
    health = backend.health(request_id="req-h")
    assert health.data.status == "ok" and health.data.version == "abc1234"
    assert health.data.surfaces["backend"] == "abc1234"
    assert health.echoed and health.status == 200 and health.request_id == "req-h"
    control = backend.trading_control(request_id="req-c").data
    assert control.revision == 1 and not control.is_halted("global") and control.scopes == ()
    assert backend.feature_flags(request_id="req-f").data["flags"]
    assert backend.dynamic_config(request_id="req-d").data["values"]
    (recorded,) = sim.calls("GET", "/api/health")
    assert recorded.headers["x-request-id"] == "req-h"
    assert recorded.headers["authorization"].startswith("Bearer ey")
    assert "idempotency-key" not in recorded.headers


def test_halt_and_resume_a_scope(sim: SimBackend, backend: TradingBackend) -> None:
    halted = halt(backend, "tenant:acme")
    assert halted.data.is_halted("tenant:acme")
    assert not halted.data.is_halted("tenant:other") and not halted.data.is_halted("global")
    assert sim.calls("POST", HALT)[0].headers["idempotency-key"] == "appr-1:halt"
    resumed = backend.resume(
        scope="tenant:acme", reason="fixed", actor="U2", request_id="req-2", idempotency_key="appr-2:resume"
    )
    assert not resumed.data.is_halted("tenant:acme") and resumed.data.revision == 3


def test_a_retried_write_with_the_same_key_is_applied_once(sim: SimBackend, backend: TradingBackend) -> None:
    first, second = halt(backend, "global"), halt(backend, "global")
    assert first.data == second.data and second.data.is_halted("global")
    assert len(sim.calls("POST", HALT)) == 2
    assert sim.control()["revision"] == 2


def test_key_reused_with_another_body_is_rejected_409(sim: SimBackend, backend: TradingBackend) -> None:
    halt(backend, "tenant:acme")
    with pytest.raises(BackendRejected) as caught:
        halt(backend, "tenant:zeta")
    assert caught.value.status == 409 and "different body" in caught.value.detail
    assert caught.value.request_id == "req-1" and not caught.value.retryable


def test_unconfigured_backend_says_so_without_a_request() -> None:
    with pytest.raises(BackendNotConfigured) as caught:
        make_client(None).trading_control(request_id="req-n")
    assert caught.value.request_id == "req-n"


def test_missing_token_is_rejected_401_and_not_retried(sim: SimBackend) -> None:
    client = TradingBackend(base_url=sim.url, tokens=None)
    with pytest.raises(BackendRejected) as caught:
        client.health(request_id="req-a")
    assert caught.value.status == 401
    assert len(sim.requests) == 1


def test_latency_beyond_read_timeout_fails_fast(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.latency_s = 5.0
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        backend.health(request_id="req-slow")
    assert time.monotonic() - started < 2.0  # 3 attempts x 0.3 s + 0.4 s backoff, not 5 s
    assert "timed out" in caught.value.detail and caught.value.status is None
    assert len(sim.calls("GET", "/api/health")) == 3


def test_write_that_timed_out_is_not_resent(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.latency_s = 5.0
    with pytest.raises(BackendUnavailable) as caught:
        halt(backend)
    assert caught.value.retryable  # the operator may retry: the same key makes it safe
    assert len(sim.calls("POST", HALT)) == 1


@pytest.mark.parametrize(("status", "gets", "posts"), [(500, 1, 1), (502, 3, 2), (503, 3, 2), (504, 3, 2)])
def test_server_errors_are_unavailable_after_bounded_retries(
    sim: SimBackend, backend: TradingBackend, status: int, gets: int, posts: int
) -> None:
    sim.faults.fail_status = status
    with pytest.raises(BackendUnavailable) as read_error:
        backend.trading_control(request_id="req-r")
    with pytest.raises(BackendUnavailable) as write_error:
        halt(backend)
    assert read_error.value.status == write_error.value.status == status
    assert "simulated failure" in read_error.value.detail
    assert len(sim.calls("GET", "/api/trading-control")) == gets
    assert len(sim.calls("POST", HALT)) == posts
    assert sim.control()["revision"] == 1


def test_one_transient_503_is_absorbed_by_a_retry(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.fail_status, sim.faults.fail_times = 503, 1
    reply = backend.health(request_id="req-t")
    assert reply.status == 200 and reply.elapsed_ms >= 100  # includes the 0.1 s backoff
    sim.faults.fail_times = 1
    assert halt(backend, "global").data.is_halted("global")
    assert len(sim.calls("POST", HALT)) == 2 and sim.control()["revision"] == 2


def test_403_is_rejected_without_retry(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.fail_status = 403
    with pytest.raises(BackendRejected) as caught:
        halt(backend)
    assert caught.value.status == 403 and "simulated failure" in caught.value.detail
    assert len(sim.requests) == 1


def test_dropped_connection_is_unavailable(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.drop_connection = True
    with pytest.raises(BackendUnavailable, match="dropped"):
        backend.health(request_id="req-d")
    with pytest.raises(BackendUnavailable):
        halt(backend)
    # Reads are retried; a write that may have reached the handler is left to the operator.
    assert len(sim.calls("GET", "/api/health")) == 3
    assert len(sim.calls("POST", HALT)) == 1


def test_refused_connection_is_unavailable() -> None:
    with SimBackend() as dead:
        url = dead.url
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="refused"):
        make_client(url).health(request_id="req-x")
    assert time.monotonic() - started < 2.0


def test_halt_not_applied_is_visible_in_the_reply(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.halt_not_applied = True
    reply = halt(backend, "global")
    assert reply.status == 200
    assert not reply.data.is_halted("global")  # the caller must check, a 200 is not proof


def test_missing_echo_is_reported(sim: SimBackend, backend: TradingBackend) -> None:
    sim.faults.echo_request_id = False
    assert backend.health(request_id="req-e").echoed is False


class _WrongShape(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"global": "yes", "revision": "seven"}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_answer_of_the_wrong_shape_is_unavailable() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongShape)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with pytest.raises(BackendUnavailable, match="unexpected answer") as caught:
            make_client(f"http://127.0.0.1:{server.server_address[1]}").trading_control(request_id="r")
        assert caught.value.status == 200
    finally:
        server.shutdown()
        server.server_close()


class _BrokenTokens:
    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def token(self) -> str:
        raise TokenError("token endpoint answered HTTP 401", retryable=self.retryable)


@pytest.mark.parametrize(("retryable", "error"), [(True, BackendUnavailable), (False, BackendRejected)])
def test_no_token_means_no_request(sim: SimBackend, retryable: bool, error: type[Exception]) -> None:
    with pytest.raises(error, match="no token"):
        make_client(sim.url, tokens=_BrokenTokens(retryable)).health(request_id="req-k")
    assert sim.requests == []


def test_logs_carry_the_request_id_never_the_token(sim: SimBackend, caplog: pytest.LogCaptureFixture) -> None:
    token = StaticToken("not-a-jwt-but-secret-value")
    caplog.set_level(logging.DEBUG)
    client = make_client(sim.url, tokens=token)
    with pytest.raises(BackendRejected):
        client.health(request_id="req-log")
    sim.faults.fail_status = 503
    with pytest.raises(BackendUnavailable):
        client.health(request_id="req-log2")
    assert "req-log" in caplog.text and "req-log2" in caplog.text
    assert "not-a-jwt-but-secret-value" not in caplog.text


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"global": {"halted": "no"}, "scopes": [], "revision": 1},
        {"global": {"halted": False}, "scopes": {}, "revision": 1},
        {"global": {"halted": False}, "scopes": [{"disabled": True}], "revision": 1},
        {"global": {"halted": False}, "scopes": [], "revision": True},
        {"global": {"halted": False, "reason": 3}, "scopes": [], "revision": 1},
    ],
)
def test_trading_control_rejects_bad_shapes(doc: Any) -> None:
    with pytest.raises(ValueError):
        TradingControl.from_json(doc)
