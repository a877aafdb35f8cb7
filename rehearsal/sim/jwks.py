"""A simulated platform-service auth edge on loopback: JWKS and a client-credentials token endpoint.

Serves `GET /.well-known/jwks.json` (RSA public keys) and `POST /oauth/token` (OAuth2 client
credentials, form or HTTP Basic client authentication), answering RS256 JWTs with `kid`, `iss`,
`sub` and `exp`. Keys rotate on demand; faults add latency or fail every request. Used by tests
and the local rehearsal workspace. Client secrets and tokens are never logged.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from rehearsal.loopback import LoopbackHandler, LoopbackServer, wait_for_interrupt

logger = logging.getLogger("opsbot.sim.jwks")

Answer = tuple[int, dict[str, Any]]
JWKS_PATH = "/.well-known/jwks.json"
OAUTH_PATH = "/oauth/token"


@dataclass
class Faults:
    """Switches flipped at runtime; they apply to every endpoint, or `fail_path` only when it is set."""

    latency_s: float = 0.0
    fail_status: int | None = None
    fail_path: str | None = None  # e.g. JWKS_PATH: verification breaks, the token endpoint still answers


class _Handler(LoopbackHandler["SimPlatformAuth"]):
    server_version = "platform-sim/1"
    sim_logger = logger

    def serve(self, method: str) -> None:
        raw = self.read_body()
        path, authorization = self.path.split("?", 1)[0], self.headers.get("authorization", "")
        status, doc = self.owner._handle(method, path, authorization, raw)
        payload = json.dumps(doc).encode()
        self.send_or_drop(
            status,
            {"content-type": "application/json", "content-length": str(len(payload)), "cache-control": "no-store"},
            payload,
        )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


class SimPlatformAuth(LoopbackServer):
    def __init__(
        self,
        *,
        client_id: str = "trading-opsbot",
        client_secret: str,
        issuer: str = "platform-service",
        keep_old_keys: bool = True,
        token_lifetime_s: int = 300,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(_Handler, host=host, port=port, thread_name="sim-platform-auth")
        self.faults = Faults()
        self.issuer = issuer
        self.keep_old_keys = keep_old_keys
        self.token_lifetime_s = token_lifetime_s
        self.requests: list[tuple[str, str]] = []  # (method, path) only: forms carry the client secret
        self._client_id = client_id
        self._client_secret = client_secret
        self._lock = threading.Lock()
        # Every key ever made stays here, so tests can still sign with a key the JWKS has dropped.
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._published: list[str] = []
        self.current_kid = self._add_key()

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def token_url(self) -> str:
        return self.url + OAUTH_PATH

    def rotate(self, *, keep_old: bool | None = None) -> str:
        """Make a new current key; the old one stays in the JWKS unless `keep_old` (or the default) says no."""
        keep = self.keep_old_keys if keep_old is None else keep_old
        with self._lock:
            if not keep:
                self._published.clear()
        self.current_kid = self._add_key()
        return self.current_kid

    def mint(self, sub: str, *, expires_in: int = 300, issuer: str | None = None, kid: str | None = None) -> str:
        """An RS256 token signed with the current key, or with the key `kid` (published or not)."""
        kid = kid or self.current_kid
        now = int(time.time())
        claims = {
            "iss": issuer if issuer is not None else self.issuer,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._keys[kid], algorithm="RS256", headers={"kid": kid})

    def public_pem(self, kid: str | None = None) -> str:
        key = self._keys[kid or self.current_kid].public_key()
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            published = list(self._published)
        keys = []
        for kid in published:
            jwk = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def calls(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p in self.requests if p == path)

    def _add_key(self) -> str:
        kid = f"sim-{uuid.uuid4().hex[:12]}"
        key = _new_key()
        with self._lock:
            self._keys[kid] = key
            self._published.append(kid)
        return kid

    def _handle(self, method: str, path: str, authorization: str, raw: bytes) -> Answer:
        with self._lock:
            self.requests.append((method, path))
        self._pause(self.faults.latency_s)
        if self.faults.fail_status is not None and self.faults.fail_path in (None, path):
            status = self.faults.fail_status
            return status, {"error": f"simulated failure (HTTP {status})"}
        if path == JWKS_PATH:
            return (200, self.jwks()) if method == "GET" else (405, {"error": "use GET"})
        if path == OAUTH_PATH:
            return self._token(authorization, raw) if method == "POST" else (405, {"error": "use POST"})
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def _token(self, authorization: str, raw: bytes) -> Answer:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        basic = _basic_credentials(authorization)
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        # Constant-time comparison, as a real token endpoint would do.
        good_id = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        good_secret = hmac.compare_digest(secret.encode(), self._client_secret.encode())
        if not (good_id and good_secret):
            return 401, {"error": "invalid_client"}
        token = self.mint(client_id, expires_in=self.token_lifetime_s)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal.sim.jwks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--client-id", default=os.environ.get("OPSBOT_CLIENT_ID", "trading-opsbot"))
    parser.add_argument("--issuer", default=os.environ.get("PLATFORM_JWT_ISSUER", "platform-service"))
    parser.add_argument("--drop-old-keys", action="store_true", help="rotation removes the old key from the JWKS")
    parser.add_argument(
        "--write-public-key",
        metavar="FILE",
        help="write the current public key (PEM) here, e.g. for rehearsal.sim.backend --jwt-public-key-file",
    )
    args = parser.parse_args(argv)
    # The secret comes from the environment only: argv is visible to every user of the machine.
    secret = os.environ.get("OPSBOT_CLIENT_SECRET", "")
    if not secret.strip():
        parser.error("set OPSBOT_CLIENT_SECRET to the client secret the token endpoint should accept")
    with SimPlatformAuth(
        client_id=args.client_id,
        client_secret=secret,
        issuer=args.issuer,
        keep_old_keys=not args.drop_old_keys,
        host=args.host,
        port=args.port,
    ) as sim:
        if args.write_public_key:
            Path(args.write_public_key).write_text(sim.public_pem(), encoding="utf-8")
        print(
            f"simulated platform auth on {sim.url}: JWKS {sim.jwks_url}, token {sim.token_url}, "
            f"issuer {sim.issuer!r}; Ctrl-C to stop",
            flush=True,
        )
        wait_for_interrupt()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
