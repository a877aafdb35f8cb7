"""The simulated backend keeps the trading backend's API, so rehearsals and benchmarks exercise the real contract."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rehearsal.sim.backend import SimBackend

SECRET = "test-secret-0123456789-abcdefghijklmnop"


def mint(secret: str = SECRET, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "platform-service", "sub": "svc:test", "iat": now, "exp": now + 300, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def sim() -> Iterator[SimBackend]:
    with SimBackend(jwt_secret=SECRET, version="feedbee") as backend:
        yield backend


@pytest.fixture
def client(sim: SimBackend) -> Iterator[httpx.Client]:
    auth = {"authorization": f"Bearer {mint()}"}
    with httpx.Client(base_url=sim.url, headers=auth, timeout=5) as http:
        yield http


def halt(
    client: httpx.Client,
    scope: str = "tenant:acme",
    key: str | None = None,
    path: str = "/api/trading-control/halt",
    **body: Any,
) -> httpx.Response:
    headers = {"idempotency-key": key} if key else {}
    payload = {"scope": scope, "reason": "bad fills", "actor": "U1", **body}
    return client.post(path, json=payload, headers=headers)


def test_reads_answer_the_contract_shapes(sim: SimBackend, client: httpx.Client) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["version"] == "feedbee"
    assert set(health["surfaces"]) == {"backend", "web", "mobile"}
    sim.set_version("c0ffee1")
    sim.set_health_status("degraded")
    assert client.get("/api/health").json()["version"] == "c0ffee1"
    assert client.get("/api/health").json()["status"] == "degraded"
    flags = client.get("/api/feature-flags").json()["flags"]
    assert flags and all(isinstance(f["enabled"], bool) for f in flags.values())
    control = client.get("/api/trading-control").json()
    assert control["global"]["halted"] is False and control["scopes"] == []
    config = client.get("/api/dynamic-config").json()
    assert isinstance(config["revision"], int) and config["values"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        f"Bearer {mint(secret='another-secret-0123456789-abcdefgh')}",
        f"Bearer {mint(iss='someone-else')}",
        f"Bearer {mint(exp=int(time.time()) - 60)}",
        f"Bearer {mint(exp=None)}",
        "Bearer not-a-jwt",
    ],
    ids=["missing", "empty", "basic", "bad-signature", "wrong-issuer", "expired", "no-exp", "garbage"],
)
def test_bad_or_missing_token_gets_401_json(sim: SimBackend, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    for method, path in (("GET", "/api/trading-control"), ("POST", "/api/trading-control/halt")):
        response = httpx.request(
            method, sim.url + path, headers=headers, timeout=5, json={"scope": "global", "reason": "r", "actor": "U1"}
        )
        assert response.status_code == 401
        assert response.json()["error"]
    assert sim.control()["global"]["halted"] is False


def test_rs256_public_key_verifies_tokens() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    now = int(time.time())
    good = jwt.encode({"iss": "platform-service", "exp": now + 60}, key, algorithm="RS256")
    with SimBackend(jwt_public_key=public) as sim:
        ok = httpx.get(sim.url + "/api/health", headers={"authorization": f"Bearer {good}"})
        # An HS256 token signed with the public key text must not pass (algorithm confusion).
        forged = httpx.get(sim.url + "/api/health", headers={"authorization": f"Bearer {mint()}"})
    assert ok.status_code == 200
    assert forged.status_code == 401


def test_without_keys_any_bearer_is_accepted_but_one_is_still_required() -> None:
    with SimBackend() as sim:
        assert httpx.get(sim.url + "/api/health", headers={"authorization": "Bearer x"}).status_code == 200
        assert httpx.get(sim.url + "/api/health").status_code == 401


def test_halt_and_resume_change_state_and_revision(sim: SimBackend, client: httpx.Client) -> None:
    first = halt(client, "tenant:acme").json()
    assert first["revision"] == 2
    assert first["scopes"][0]["scope"] == "tenant:acme" and first["scopes"][0]["disabled"] is True
    assert first["scopes"][0]["updated_at"].endswith("Z")
    halt(client, "global", reason="exchange outage", actor="U2")
    resumed = halt(client, "tenant:acme", path="/api/trading-control/resume").json()
    assert resumed["revision"] == 4
    assert resumed["scopes"] == [{**resumed["scopes"][0], "scope": "tenant:acme", "disabled": False}]
    assert resumed["global"]["halted"] is True
    assert resumed["global"]["updated_by"] == "U2" and resumed["global"]["reason"] == "exchange outage"
    assert sim.control() == resumed


def test_same_idempotency_key_replays_without_reapplying(sim: SimBackend, client: httpx.Client) -> None:
    first = halt(client, "symbol:BTC-USD", key="appr-1:halt")
    second = halt(client, "symbol:BTC-USD", key="appr-1:halt")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert sim.control()["revision"] == 2
    assert len(sim.calls("POST", "/api/trading-control/halt")) == 2


def test_idempotency_key_reused_with_other_body_is_409(sim: SimBackend, client: httpx.Client) -> None:
    halt(client, "tenant:acme", key="appr-2:halt")
    other_scope = halt(client, "tenant:zeta", key="appr-2:halt")
    other_action = halt(client, "tenant:acme", key="appr-2:halt", path="/api/trading-control/resume")
    assert other_scope.status_code == other_action.status_code == 409
    assert other_scope.json() == {"error": "idempotency key reused with a different body"}
    assert [s["scope"] for s in sim.control()["scopes"]] == ["tenant:acme"]
    assert sim.control()["scopes"][0]["disabled"] is True


@pytest.mark.parametrize(
    "body",
    [{"scope": "everything"}, {"reason": ""}, {"actor": None}, {"scope": "symbol:btc"}, {"reason": 5}],
)
def test_bad_write_bodies_get_400(sim: SimBackend, client: httpx.Client, body: dict[str, Any]) -> None:
    response = halt(client, **{"scope": "global", **body})
    assert response.status_code == 400 and response.json()["error"]
    assert sim.control()["revision"] == 1


def test_non_json_body_gets_400(client: httpx.Client) -> None:
    response = client.post(
        "/api/trading-control/halt",
        content=b"scope=global",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400


def test_unknown_path_is_404_json_and_wrong_method_405(client: httpx.Client) -> None:
    missing = client.get("/api/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert client.get("/api/trading-control/halt").status_code == 405


def test_request_id_echo_follows_the_switch(sim: SimBackend, client: httpx.Client) -> None:
    assert client.get("/api/health", headers={"x-request-id": "req-7"}).headers["x-request-id"] == "req-7"
    sim.faults.echo_request_id = False
    assert "x-request-id" not in client.get("/api/health", headers={"x-request-id": "req-8"}).headers


def test_fail_times_fails_the_next_n_requests_then_recovers(sim: SimBackend, client: httpx.Client) -> None:
    sim.faults.fail_status, sim.faults.fail_times = 503, 2
    statuses = [client.get("/api/health").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert len(sim.calls("GET", "/api/health")) == 3  # faulted requests are recorded too


def test_failing_write_is_not_applied(sim: SimBackend, client: httpx.Client) -> None:
    sim.faults.fail_status = 500
    response = halt(client, "global")
    assert response.status_code == 500 and response.json()["error"]
    assert sim.control()["global"]["halted"] is False


def test_drop_connection_closes_without_an_answer(sim: SimBackend, client: httpx.Client) -> None:
    sim.faults.drop_connection = True
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/api/health")
    assert len(sim.calls("GET", "/api/health")) == 1


def test_halt_not_applied_answers_200_with_unchanged_state(sim: SimBackend, client: httpx.Client) -> None:
    sim.faults.halt_not_applied = True
    response = halt(client, "global")
    assert response.status_code == 200
    assert response.json()["global"]["halted"] is False and response.json()["revision"] == 1


def test_latency_delays_every_answer(sim: SimBackend, client: httpx.Client) -> None:
    sim.faults.latency_s = 0.3
    started = time.monotonic()
    client.get("/api/health")
    assert time.monotonic() - started >= 0.3


def test_requests_are_recorded_with_lowercase_headers_and_body(sim: SimBackend, client: httpx.Client) -> None:
    halt(client, "global", key="k-1")
    (recorded,) = sim.calls("POST", "/api/trading-control/halt")
    assert recorded.headers["idempotency-key"] == "k-1"
    assert recorded.headers["authorization"].startswith("Bearer ")
    assert recorded.body == {"scope": "global", "reason": "bad fills", "actor": "U1"}


def test_module_serves_from_the_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rehearsal.sim.backend", "--port", "0", "--jwt-secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        auth = {"authorization": f"Bearer {mint()}"}
        assert httpx.get(url + "/api/health", headers=auth).status_code == 200
        assert httpx.get(url + "/api/health").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=5)
