"""The Prometheus HTTP API client against a local server answering with Prometheus's shapes and faults."""

from __future__ import annotations

import base64
import logging
import math
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot import logs
from bot.clients.prometheus import (
    PromBadAnswer,
    PromClient,
    PromQueryError,
    PromTimeout,
    PromUnavailable,
    _envelope,
    duration,
)
from bot.text import without_credentials
from tests.support.monitoring import FakePrometheus


def client(fake: FakePrometheus, **kw: object) -> PromClient:
    return PromClient(fake.url, timeout_s=0.5, **kw)  # type: ignore[arg-type]


def test_instant_vector_and_the_time_and_token_sent(fake_prom: FakePrometheus) -> None:
    fake_prom.values = {"auth_failures": 14.0}
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    answer = client(fake_prom, token="s3cret").query("sum(increase(trading_auth_failures_total[300s]))", at=at)
    assert answer.result_type == "vector" and [s.value for s in answer.samples] == [14.0]
    sent = fake_prom.requests[-1]
    assert sent["path"] == "/api/v1/query" and float(sent["time"]) == at.timestamp()
    assert sent["authorization"] == "Bearer s3cret"


def test_empty_vector_is_no_samples_not_zero(fake_prom: FakePrometheus) -> None:
    fake_prom.mode = "empty"
    assert client(fake_prom).query("up").samples == ()


def test_nan_is_passed_on_as_nan(fake_prom: FakePrometheus) -> None:
    fake_prom.mode = "nan"
    assert math.isnan(client(fake_prom).query("0/0").samples[0].value)


def test_range_query_is_a_matrix(fake_prom: FakePrometheus) -> None:
    fake_prom.values = {"x": 3.0}
    end = datetime.now(UTC)
    series = client(fake_prom).query_range("x", start=end - timedelta(minutes=5), end=end, step=timedelta(seconds=10))
    assert len(series) == 1 and len(series[0].points) > 10 and {v for _, v in series[0].points} == {3.0}
    assert fake_prom.requests[-1]["step"] == "10"


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("error", PromQueryError, "Prometheus refused the query (execution, HTTP 422)"),
        ("http500", PromBadAnswer, "HTTP 500 without JSON"),
        ("bad_json", PromBadAnswer, "without JSON"),
        ("string", PromBadAnswer, "resultType 'string'"),
        ("slow", PromTimeout, "did not answer within 0.5 s"),
    ],
)
def test_faults_are_typed_errors(fake_prom: FakePrometheus, mode: str, error: type[Exception], words: str) -> None:
    fake_prom.mode, fake_prom.delay = mode, 1.0
    started = time.monotonic()
    with pytest.raises(error) as caught:
        client(fake_prom).query("up")
    assert words in str(caught.value)
    assert time.monotonic() - started < 1.5


def test_unreachable_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PromUnavailable, match="Prometheus is unreachable"):
        PromClient(f"http://127.0.0.1:{port}", timeout_s=0.5).query("up")


def test_scalar_is_one_sample(fake_prom: FakePrometheus) -> None:
    fake_prom.mode, fake_prom.values = "scalar", {"": 2.5}
    answer = client(fake_prom).query("scalar(x)")
    assert answer.result_type == "scalar" and [s.value for s in answer.samples] == [2.5]


def test_answers_that_are_not_prometheus() -> None:
    def answer(status: int, body: object) -> httpx.Response:
        return httpx.Response(status, json=body)

    with pytest.raises(PromBadAnswer):
        _envelope(answer(200, {"hello": "world"}))
    with pytest.raises(PromBadAnswer):
        _envelope(answer(503, {"status": "success"}))
    with pytest.raises(PromQueryError, match="bad_data"):
        _envelope(answer(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}))


def test_duration_is_whole_seconds() -> None:
    assert duration(timedelta(minutes=5)) == "300s"
    assert duration(timedelta(milliseconds=10)) == "1s"


def test_credentials_in_the_url_travel_as_basic_auth_and_are_never_shown_or_logged(
    fake_prom: FakePrometheus,
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in ("httpx", "httpcore")})
    logs.configure()  # the bot's own logging set-up, as `opsbot serve` runs it
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep(level=logging.DEBUG)
    logging.getLogger().addHandler(keep)
    try:
        with_creds = fake_prom.url.replace("http://", "http://opsbot:S3cr3tPass@")
        prom = PromClient(with_creds, timeout_s=0.5)
        prom.query("up")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    assert fake_prom.requests[-1]["authorization"] == "Basic " + base64.b64encode(b"opsbot:S3cr3tPass").decode()
    assert prom.base_url == fake_prom.url and "S3cr3tPass" not in repr(vars(prom))
    assert not [line for line in seen if "S3cr3tPass" in line]
    assert without_credentials("https://u:p@[::1]:9090/prom") == "https://[::1]:9090/prom"
    assert without_credentials("https://prom.internal/") == "https://prom.internal/"
