"""The HTTP surface: POST /slack/events (through Bolt), GET /healthz, /readyz and /metrics."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.audit import Actor, Entry
from bot.db import ping
from bot.deps import Deps
from bot.errors import OpsbotError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

EVENTS_PATH = "/slack/events"
# Unsigned traffic must not be able to flood the audit table: past this many rows a minute it is
# only counted in metrics.
DENIAL_AUDIT_PER_MINUTE = 60
# Slack's requests are a few kB (a click on a large message some tens); nothing legitimate comes near this.
MAX_BODY_BYTES = 1024 * 1024

Wsgi = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


class Router:
    def __init__(self, app: App, deps: Deps) -> None:
        self._slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self._deps = deps
        self._window = (0, 0)  # (minute, rows audited in it)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH and method == "POST":
            return self._events(environ, start_response)
        if method == "GET" and path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        if method == "GET" and path == "/readyz":
            if ping(self._deps.engine):
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
        # The 401 stands either way; the metric above still counts it.
        with suppress(OpsbotError):
            self._deps.audit.record(Entry(Actor("", "unverified"), f"request.{why}_denied", "denied", params))


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
