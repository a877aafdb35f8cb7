"""The HTTP surface: POST /slack/events (through Bolt), GET /healthz, /readyz and /metrics."""

from __future__ import annotations

import hashlib
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
        captured: dict[str, str] = {}

        def spy(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Callable[[bytes], object]:
            captured["status"] = status
            return start_response(status, headers)

        body = self._slack(environ, spy)
        if captured.get("status", "").startswith("401"):
            self._denied(environ)
        return body

    def _denied(self, environ: WSGIEnvironment) -> None:
        self._deps.metrics.denied.labels("signature").inc()
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
        }
        # The 401 stands either way; the metric above still counts it.
        with suppress(OpsbotError):
            self._deps.audit.record(Entry(Actor("", "unverified"), "request.signature_denied", "denied", params))


def _plain(start_response: StartResponse, status: str, body: bytes, ctype: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
