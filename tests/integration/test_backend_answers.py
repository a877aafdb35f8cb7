"""Each answer of the trading backend, with one field of the wrong type or left out, through the real
client: refused as an unexpected answer naming the field, never read as a state the backend is not in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import methodcaller
from typing import Any

import pytest

from bot.clients.backend import TradingBackend
from bot.clients.backend_errors import BackendRejected, BackendUnavailable
from bot.clients.tokens import Hs256Token
from commands.errors import operator_message
from rehearsal.sim.backend import SimBackend
from tests.support.answers import Tamper, changed, drop, set_to

SECRET = "answers-test-secret-0123456789-abcdef"
Call = Callable[[TradingBackend], object]


def _halt(backend: TradingBackend) -> object:
    return backend.halt(
        scope="tenant:acme", reason="bad fills", actor="U1", request_id="req-a", idempotency_key="appr-a:halt"
    )


HEALTH, CONTROL, FLAGS, CONFIG = (
    methodcaller(name, request_id="req-a") for name in ("health", "trading_control", "feature_flags", "dynamic_config")
)

CASES = [
    (HEALTH, "/api/health", set_to("version", to=7), "health: version: Input should be a valid string"),
    (HEALTH, "/api/health", drop("status"), "health: status: Field required"),
    (
        CONTROL,
        "/api/trading-control",
        set_to("global", "halted", to="no"),
        "trading-control: global.halted: Input should be a valid boolean",
    ),
    (CONTROL, "/api/trading-control", drop("revision"), "trading-control: revision: Field required"),
    (
        CONTROL,
        "/api/trading-control",
        set_to("revision", to=True),
        "trading-control: revision: Input should be a valid integer",
    ),
    (
        _halt,
        "/halt",
        set_to("scopes", 0, "disabled", to="yes"),
        "trading-control: scopes[0].disabled: Input should be a valid boolean",
    ),
    (_halt, "/halt", drop("scopes", 0, "scope"), "trading-control: scopes[0].scope: Field required"),
    (FLAGS, "/api/feature-flags", set_to("flags", to=[]), "feature-flags: flags: Input should be a valid dictionary"),
    (FLAGS, "/api/feature-flags", drop("flags"), "feature-flags: flags: Field required"),
    (
        CONFIG,
        "/api/dynamic-config",
        set_to("values", to="risk"),
        "dynamic-config: values: Input should be a valid dictionary",
    ),
    (CONFIG, "/api/dynamic-config", drop("values"), "dynamic-config: values: Field required"),
]


@pytest.fixture
def sim() -> Iterator[SimBackend]:
    with SimBackend(jwt_secret=SECRET) as backend:
        yield backend


def client(url: str) -> TradingBackend:
    return TradingBackend(
        base_url=url,
        tokens=Hs256Token(SECRET, "platform-service"),
        read_timeout_s=1.0,
        write_timeout_s=1.0,
        connect_timeout_s=1.0,
    )


@pytest.mark.parametrize(("call", "path", "change", "named"), CASES, ids=[case[3].split(": I")[0] for case in CASES])
def test_a_malformed_answer_is_refused_naming_the_field(
    sim: SimBackend, call: Call, path: str, change: Callable[[Any], None], named: str
) -> None:
    with Tamper(sim.url, changed(path, change)) as tamper:
        backend = client(tamper.url)
        with pytest.raises(BackendUnavailable) as caught:
            call(backend)
        backend.close()
    assert caught.value.status == 200 and caught.value.detail.startswith(f"unexpected answer ({named}")
    assert f"(HTTP 200: unexpected answer ({named}" in operator_message(caught.value)
    assert len(sim.requests) == 1  # an answer that arrived is not asked for again, a write is not repeated


def test_untouched_answers_pass_through_the_proxy(sim: SimBackend) -> None:
    with Tamper(sim.url, lambda path, doc: doc) as tamper:
        backend = client(tamper.url)
        assert backend.health(request_id="req-p").echoed
        assert _halt(backend) is not None and sim.control()["scopes"][0]["disabled"] is True
        backend.close()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda doc: None, "no permission to halt"),
        (set_to("error", to=7), "HTTP 403"),
        (set_to("error", to=""), "HTTP 403"),
        (drop("error"), "HTTP 403"),
    ],
    ids=["its words", "a number", "empty", "left out"],
)
def test_a_refusal_shows_the_backends_words_only_when_they_are_words(
    sim: SimBackend, change: Callable[[Any], None], detail: str
) -> None:
    sim.faults.fail_status, sim.faults.fail_error = 403, "no permission to halt"
    with Tamper(sim.url, changed("/halt", change)) as tamper:
        backend = client(tamper.url)
        with pytest.raises(BackendRejected) as caught:
            _halt(backend)
        backend.close()
    assert caught.value.status == 403 and caught.value.detail == detail
