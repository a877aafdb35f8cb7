"""The HTTP surface: POST /slack/events (through Bolt), GET /healthz, /readyz and /metrics."""

from __future__ import annotations

import hashlib
import io
import queue
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from bot.audit.log import Actor, Entry
from bot.audit.replays import Front, current_key, replay_entry, request_key
from bot.errors import OpsbotError
from bot.metrics import Metrics
from bot.storage.db import ping
from commands.deps import Deps

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

EVENTS_PATH = "/slack/events"
# Unsigned traffic must not be able to flood the audit table: past this many rows a minute it is
# only counted in metrics.
DENIAL_AUDIT_PER_MINUTE = 60
# Slack's requests are a few kB (a click on a large message some tens); nothing legitimate comes near this.
MAX_BODY_BYTES = 1024 * 1024

# waitress buffers each request in its I/O loop until it is complete, so idle and half-sent connections
# cost no worker thread; what they exhaust is the connection limit (100 by default, after which it stops
# accepting). Measured on loopback: 250 idle half-open connections plus signed requests, answered at once
# with these limits (tests/e2e/test_http_capacity.py). channel_timeout drops connections idle that long.
SERVER_OPTIONS: dict[str, Any] = {
    "connection_limit": 4000,
    "channel_timeout": 30,
    "cleanup_interval": 5,
    "backlog": 2048,
}

Wsgi = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


class Router:
    def __init__(self, app: App, deps: Deps) -> None:
        self._slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self._deps = deps
        self._window = (0, 0)  # (minute, rows audited in it)
        secret = deps.settings.slack_signing_secret
        self._verifier = SignatureVerifier(secret.get_secret_value() if secret else "")
        self._front = Front()
        # Store writes the request thread must not wait for (denial and replay rows); bounded, dropped
        # (and counted) when the store cannot keep up.
        self._writes = BackgroundWrites(deps.metrics)
        self._ready = Readiness(lambda: ping(deps.engine))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH and method == "POST":
            return self._events(environ, start_response)
        if method == "GET" and path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        if method == "GET" and path == "/readyz":
            if self._ready.ok():
                return _plain(start_response, "200 OK", b"ready\n")
            return _plain(start_response, "503 Service Unavailable", b"store unreachable\n")
        if method == "GET" and path == "/metrics":
            return _plain(start_response, "200 OK", self._deps.metrics.render(), "text/plain; version=0.0.4")
        return _plain(start_response, "404 Not Found", b"not found\n")

    def _events(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Bolt reads and decodes the whole body before it checks the signature: bound it and check it
        # decodes first, so unsigned traffic can neither exhaust memory nor raise inside Bolt.
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._denied(environ, "oversized")
            return _plain(start_response, "413 Payload Too Large", b"request body too large\n")
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            self._denied(environ, "undecodable")
            return _plain(start_response, "400 Bad Request", b"request body is not UTF-8\n")
        environ["wsgi.input"] = io.BytesIO(raw)
        key = self._replay_key(environ, raw)
        if key is not None and not self._front.first_sight(key):
            self._replayed(key)
            return _plain(start_response, "200 OK", b"")
        token = current_key.set(key)
        try:
            return self._bolt(environ, start_response)
        finally:
            current_key.reset(token)

    def _replay_key(self, environ: WSGIEnvironment, raw: bytes) -> str | None:
        """The request's key when its signature is valid (only then can it be a replay of a real one)."""
        ts = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not ts or not signature or not self._verifier.is_valid(raw, ts, signature):
            return None
        return request_key(ts, signature)

    def _replayed(self, key: str) -> None:
        self._deps.metrics.denied.labels("replay").inc()
        entry = replay_entry(key, actor=Actor("", "unverified"), what="signed request")
        self._writes.offer(lambda: self._deps.replays.note_replay(key, entry))

    def _bolt(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        captured: dict[str, str] = {}

        def spy(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], object]:
            captured["status"] = status
            return start_response(status, headers)

        body = self._slack(environ, spy)
        if captured.get("status", "").startswith("401"):
            self._denied(environ, "signature")
        return body

    def _denied(self, environ: WSGIEnvironment, why: str) -> None:
        self._deps.metrics.denied.labels(why).inc()
        minute, count = self._window
        now_minute = int(time.time() // 60)
        count = count + 1 if now_minute == minute else 1
        self._window = (now_minute, count)
        if count > DENIAL_AUDIT_PER_MINUTE:
            return
        params = {
            "remote_addr": environ.get("REMOTE_ADDR", ""),
            "timestamp_header": environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")[:20],
            "signature_sha256": hashlib.sha256(environ.get("HTTP_X_SLACK_SIGNATURE", "").encode()).hexdigest(),
            "why": why,
        }
        entry = Entry(Actor("", "unverified"), f"request.{why}_denied", "denied", params)
        # Off the request thread: the 401 stands either way, and the metric above still counts it.
        self._writes.offer(lambda: self._deps.audit.record(entry))


class BackgroundWrites:
    """One thread writing what the request threads hand it; at most QUEUE_MAX waiting."""

    QUEUE_MAX = 256

    def __init__(self, metrics: Metrics) -> None:
        self._queue: queue.Queue[Callable[[], object]] = queue.Queue(maxsize=self.QUEUE_MAX)
        self._metrics = metrics
        self._thread = threading.Thread(target=self._run, name="opsbot-http-writes", daemon=True)
        self._thread.start()

    def offer(self, write: Callable[[], object]) -> None:
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            self._metrics.denied.labels("audit_dropped").inc()

    def _run(self) -> None:
        while True:
            write = self._queue.get()
            with suppress(OpsbotError):
                write()


class Readiness:
    """/readyz from a cached store check, refreshed in the background: the request never waits for it."""

    MAX_AGE_S = 2.0

    def __init__(self, check: Callable[[], bool]) -> None:
        self._check = check
        self._state, self._at = False, 0.0
        self._lock = threading.Lock()
        self._running = False

    def ok(self) -> bool:
        with self._lock:
            stale = time.monotonic() - self._at > self.MAX_AGE_S
            start = stale and not self._running
            self._running = self._running or start
        if start:
            threading.Thread(target=self._refresh, name="opsbot-readyz", daemon=True).start()
            if self._at == 0.0:  # the very first call waits a little for a real answer
                deadline = time.monotonic() + 0.5
                while self._running and time.monotonic() < deadline:
                    time.sleep(0.01)
        return self._state

    def _refresh(self) -> None:
        try:
            state = self._check()
        finally:
            with self._lock:
                self._running = False
        with self._lock:
            self._state, self._at = state, time.monotonic()


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
