"""A simulated trading backend (the trading backend's API) on loopback, with fault switches.

Used by tests, the local rehearsal workspace and the benchmark. Auth: with `jwt_secret` (HS256) or
`jwt_public_key` (RS256) configured, every request needs a bearer JWT with the configured issuer
and an `exp`; with neither configured, any non-empty bearer token is accepted (local rehearsal).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from rehearsal.loopback import LoopbackHandler, LoopbackServer, wait_for_interrupt
from rehearsal.sim.backend_metrics import ClientTraffic, SimMetrics

logger = logging.getLogger("opsbot.sim.backend")

Answer = tuple[int, dict[str, Any]]
_SCOPE = re.compile(r"^(global|tenant:[A-Za-z0-9_.-]+|strategy:[A-Za-z0-9_.-]+|symbol:[A-Z0-9_./-]+)$")
_WRITES = {"/api/trading-control/halt": True, "/api/trading-control/resume": False}
_READS = frozenset({"/api/health", "/api/feature-flags", "/api/trading-control", "/api/dynamic-config"})

_FLAGS: dict[str, dict[str, Any]] = {
    "trading.manual_entry": {"enabled": True, "description": "Manual trade entry in the web console"},
    "web.product_kill_switch": {"enabled": True, "description": "Kill-switch reachable from the web app"},
    "web.websocket_auth_gating": {"enabled": True, "description": "Websocket needs a platform token"},
    "mobile.session_bootstrap_v2": {"enabled": False, "description": "New mobile session bootstrap"},
}
_CONFIG: dict[str, Any] = {
    "revision": 42,
    "values": {
        "risk.max_order_notional_usd": 250000,
        "execution.persistence": "cosmos",
        "marketdata.stale_after_ms": 1500,
    },
}


@dataclass
class Faults:
    """Switches flipped at runtime. Faults act before auth, like a failing gateway. `fail_times` counts
    down both `fail_status` and `drop_connection` (drop wins when both are set); at 0 requests are
    answered normally again."""

    latency_s: float = 0.0
    read_latency_s: float = 0.0  # added to GETs only: slow reads, prompt writes
    trickle_s: float = 0.0  # GETs answered one byte at a time, this many seconds apart
    fail_status: int | None = None
    fail_times: int | None = None
    drop_connection: bool = False
    fail_error: str | None = None  # the `error` text of a simulated failure, when a test needs its words
    halt_not_applied: bool = False  # acknowledged, not applied: counted as a control update failure
    echo_request_id: bool = True
    signins_failing: bool = False  # platform sign-in down: the simulated clients' sign-ins fail (/metrics)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _write_problem(body: dict[str, Any] | None) -> str | None:
    if body is None:
        return "body must be a JSON object with scope, reason and actor"
    scope = body.get("scope")
    if not isinstance(scope, str) or not _SCOPE.match(scope):
        return "scope must be global, tenant:<id>, strategy:<id> or symbol:<SYMBOL>"
    for name in ("reason", "actor"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is required"
    return None


class _Handler(LoopbackHandler["SimBackend"]):
    server_version = "trading-sim/1"
    sim_logger = logger

    def serve(self, method: str) -> None:
        sim = self.owner
        raw = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        if method == "GET" and self.path.split("?", 1)[0] == "/metrics":
            self._metrics(sim)  # Prometheus scrapes: not recorded, no faults, no auth
            return
        answer = sim._handle(method, self.path.split("?", 1)[0], headers, raw)
        if answer is None:  # simulated dropped connection: close without a status line
            self.close_connection = True
            return
        status, doc = answer
        sim.metrics.response(status)
        payload = json.dumps(doc).encode()
        out = {"content-type": "application/json", "content-length": str(len(payload))}
        if sim.faults.echo_request_id and "x-request-id" in headers:
            out["x-request-id"] = headers["x-request-id"]
        if method == "GET" and sim.faults.trickle_s > 0:
            self._trickle(status, out, payload, sim)
            return
        self.send_or_drop(status, out, payload)

    def _trickle(self, status: int, headers: dict[str, str], payload: bytes, sim: SimBackend) -> None:
        """Each byte of the answer, status line first, `trickle_s` apart: every read sees progress."""
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.close_connection = True
        try:
            for byte in head.encode() + payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if sim._stopping.wait(sim.faults.trickle_s):
                    return
        except (BrokenPipeError, ConnectionResetError):
            return

    def _metrics(self, sim: SimBackend) -> None:
        sim.traffic.advance(sim.faults)
        payload = sim.metrics.text()
        self.send_payload(
            200, {"content-type": "text/plain; version=0.0.4", "content-length": str(len(payload))}, payload
        )


class SimBackend(LoopbackServer):
    def __init__(
        self,
        *,
        jwt_secret: str | None = None,
        jwt_public_key: str | None = None,
        issuer: str = "platform-service",
        version: str = "abc1234",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(_Handler, host=host, port=port, thread_name="sim-backend")
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.metrics = SimMetrics()  # GET /metrics (rehearsal.sim.backend_metrics)
        self.traffic = ClientTraffic(self.metrics)  # the platform's users, meeting the faults a drill sets
        # Called with the new trading-control document after a write applied (the local workspace
        # mirrors it into Cosmos, as the real backend persists control state there).
        self.on_control_changed: Callable[[dict[str, Any]], None] | None = None
        self.issuer = issuer
        self._keys = [(k, a) for k, a in ((jwt_secret, "HS256"), (jwt_public_key, "RS256")) if k]
        self._version = version
        self._health_status = "ok"
        self._lock = threading.Lock()
        self._idempotency: dict[str, tuple[str, Answer]] = {}
        self._control: dict[str, Any] = {
            "global": {"halted": False, "reason": None, "updated_at": _now_iso(), "updated_by": None},
            "scopes": [],
            "maintenance": {"enabled": False, "message": None},
            "revision": 1,
        }

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def control(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._control)

    def set_version(self, sha: str) -> None:
        self._version = sha

    @property
    def version(self) -> str:
        return self._version

    @property
    def health_status(self) -> str:
        return self._health_status

    def restore_control(self, doc: dict[str, Any]) -> None:
        """Replace the trading-control document (a rehearsal restarting where it stopped)."""
        with self._lock:
            self._control = copy.deepcopy(doc)

    def set_health_status(self, status: str) -> None:
        self._health_status = status

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, _json_object(raw), time.time()))
        self._pause(self.faults.latency_s + (self.faults.read_latency_s if method == "GET" else 0.0))
        if self._take_fault():
            if self.faults.drop_connection:
                return None
            status = self.faults.fail_status or 500
            return status, {"error": self.faults.fail_error or f"simulated failure (HTTP {status})"}
        problem = self._auth_problem(headers.get("authorization", ""))
        if problem is not None:
            return 401, {"error": problem}
        return self._route(method, path, headers, raw)

    def _take_fault(self) -> bool:
        with self._lock:
            faults = self.faults
            if not faults.drop_connection and faults.fail_status is None:
                return False
            if faults.fail_times is None:
                return True
            if faults.fail_times <= 0:
                return False
            faults.fail_times -= 1
            return True

    def _auth_problem(self, header: str) -> str | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing bearer token"
        errors: list[str] = []
        for key, algorithm in self._keys:
            try:
                jwt.decode(
                    token.strip(), key, algorithms=[algorithm], issuer=self.issuer, options={"require": ["exp", "iss"]}
                )
                return None
            except jwt.PyJWTError as exc:
                errors.append(str(exc))
        return f"invalid token: {'; '.join(errors)}" if errors else None

    def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if method == "GET" and path == "/api/health":
            surfaces = {"backend": self._version, "web": self._version, "mobile": "build-412"}
            return 200, {"status": self._health_status, "version": self._version, "surfaces": surfaces}
        if method == "GET" and path == "/api/feature-flags":
            return 200, {"flags": copy.deepcopy(_FLAGS)}
        if method == "GET" and path == "/api/trading-control":
            return 200, self.control()
        if method == "GET" and path == "/api/dynamic-config":
            return 200, copy.deepcopy(_CONFIG)
        if method == "POST" and path in _WRITES:
            return self._write(path, _WRITES[path], _json_object(raw), headers.get("idempotency-key"))
        if path in _READS or path in _WRITES:
            return 405, {"error": f"method {method} not allowed on {path}"}
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def _write(self, path: str, halt: bool, body: dict[str, Any] | None, key: str | None) -> Answer:
        problem = _write_problem(body)
        if problem is not None or body is None:
            return 400, {"error": problem or "bad body"}
        fingerprint = path + json.dumps(body, sort_keys=True)
        with self._lock:
            if key is not None and key in self._idempotency:
                stored, answer = self._idempotency[key]
                if stored != fingerprint:
                    return 409, {"error": "idempotency key reused with a different body"}
                return answer[0], copy.deepcopy(answer[1])  # replay: not applied again
            applied = not self.faults.halt_not_applied
            if applied:
                self._apply(halt, body["scope"], body["reason"], body["actor"])
            else:
                self.metrics.bump("trading_control_update_failures_total")
            answer = (200, copy.deepcopy(self._control))
            if key is not None:
                self._idempotency[key] = (fingerprint, answer)
        if applied and self.on_control_changed is not None:  # outside the lock: it may call other servers
            self.on_control_changed(copy.deepcopy(answer[1]))
        return answer[0], copy.deepcopy(answer[1])

    def _apply(self, halt: bool, scope: str, reason: str, actor: str) -> None:
        change: dict[str, Any] = {"reason": reason, "updated_at": _now_iso()}
        if scope == "global":
            self._control["global"] = {"halted": halt, **change, "updated_by": actor}
        else:
            entry = {"scope": scope, "disabled": halt, **change}
            scopes = self._control["scopes"]
            at = next((i for i, s in enumerate(scopes) if s["scope"] == scope), len(scopes))
            scopes[at : at + 1] = [entry]  # update in place, or append a new scope
        self._control["revision"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal.sim.backend", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--jwt-secret",
        default=os.environ.get("JWT_SECRET"),
        help="HS256 secret (default: $JWT_SECRET); prefer the variable over argv",
    )
    parser.add_argument("--jwt-public-key-file", help="PEM file with the RS256 public key")
    parser.add_argument("--issuer", default=os.environ.get("PLATFORM_JWT_ISSUER", "platform-service"))
    parser.add_argument("--version", default="abc1234", help="git sha the health endpoint reports")
    args = parser.parse_args(argv)
    key_file = args.jwt_public_key_file
    public_key = Path(key_file).read_text(encoding="utf-8") if key_file else None
    with SimBackend(
        jwt_secret=args.jwt_secret,
        jwt_public_key=public_key,
        issuer=args.issuer,
        version=args.version,
        host=args.host,
        port=args.port,
    ) as sim:
        auth = "JWT verified" if args.jwt_secret or public_key else "any bearer token accepted"
        print(f"simulated trading backend on {sim.url} ({auth}); Ctrl-C to stop", flush=True)
        wait_for_interrupt()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
