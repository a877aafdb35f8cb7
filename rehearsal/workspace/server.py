"""The local workspace's page and JSON API, a small WSGI app served on loopback only.

    GET  /                     the page (static/index.html, app.js, app.css)
    GET  /api/state?user=U     the channel as U sees it, people, drills, scenarios, the stand-ins
    POST /api/command          {"user", "text"}: a slash command, e.g. "/halt status"
    POST /api/click            {"user", "action_id", "value", "message_ts"}: a button
    POST /api/drill            {"name", "on"}
    POST /api/scenario         {"name"}
    POST /api/deploy           {}: deploy a new backend version (green CI), as a release would
    POST /api/home             {"user"}: open the bot's App Home (app_home_opened)
    POST /api/home-click       {"user", "action_id", "value"}: a button on the App Home
    GET  /api/file?id=F        a file shared in the channel (a PNG shown as an image, anything else a download)

POSTs must be JSON and the Host header loopback, so a web page elsewhere cannot drive the
rehearsal (a cross-site JSON POST needs a CORS preflight this server never grants; DNS rebinding
changes the Host header).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from rehearsal.workspace.channel import Refused
from rehearsal.workspace.drills import UnknownDrill
from rehearsal.workspace.scenario_runner import ScenarioError
from rehearsal.workspace.session import Session

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger("opsbot.workspace.server")

STATIC = Path(__file__).with_name("static")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_SECURITY = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
]
MAX_BODY = 64 * 1024

Answer = tuple[str, Any]


class WorkspaceApp:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._posts: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "/api/command": self._command,
            "/api/click": self._click,
            "/api/drill": self._drill,
            "/api/scenario": self._scenario,
            "/api/deploy": self._deploy,
            "/api/home": self._home,
            "/api/home-click": self._home_click,
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        if not _loopback_host(environ.get("HTTP_HOST", "")):
            return _json(start_response, "403 Forbidden", {"error": "the local workspace answers on loopback only"})
        try:
            if method == "GET":
                return self._get(path, environ, start_response)
            if method == "POST" and path in self._posts:
                status, doc = self._posts[path](_read_json(environ))
                return _json(start_response, status, doc)
        except (Refused, UnknownDrill, ScenarioError) as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        except _BadRequest as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        return _json(start_response, "404 Not Found", {"error": f"no {method} {path}"})

    def _get(self, path: str, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if path == "/api/state":
            user = (parse_qs(environ.get("QUERY_STRING", "")).get("user") or [""])[0]
            return _json(start_response, "200 OK", self._session.state(user))
        if path == "/api/file":
            return self._file(environ, start_response)
        if path == "/healthz":
            return _json(start_response, "200 OK", {"ok": True})
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        file = STATIC / name
        # Only files directly in static/: no "..", no sub-folders.
        if "/" in name or not file.is_file() or file.suffix not in _TYPES:
            return _json(start_response, "404 Not Found", {"error": f"no {path}"})
        body = file.read_bytes()
        start_response(
            "200 OK",
            [
                ("Content-Type", _TYPES[file.suffix]),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                *_SECURITY,
            ],
        )
        return [body]

    def _file(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        file_id = (parse_qs(environ.get("QUERY_STRING", "")).get("id") or [""])[0]
        found = self._session.file(file_id) if file_id else None
        if found is None:
            return _json(
                start_response,
                "404 Not Found",
                {"error": "no such file in this channel (files are not kept across restarts)"},
            )
        name, data = found
        if name.lower().endswith(".png") and data.startswith(b"\x89PNG\r\n\x1a\n"):
            kind = [("Content-Type", "image/png")]
        else:  # never rendered by the browser: downloaded under a safe name
            safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "file"
            kind = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Disposition", f'attachment; filename="{safe_name}"'),
            ]
        start_response("200 OK", [*kind, ("Content-Length", str(len(data))), ("Cache-Control", "no-cache"), *_SECURITY])
        return [data]

    def _command(self, doc: dict[str, Any]) -> Answer:
        self._session.channel.command(_text(doc, "user"), _text(doc, "text"))
        return "200 OK", {"ok": True}

    def _click(self, doc: dict[str, Any]) -> Answer:
        self._session.channel.click(
            _text(doc, "user"),
            action_id=_text(doc, "action_id"),
            value=_text(doc, "value"),
            message_ts=_text(doc, "message_ts"),
        )
        return "200 OK", {"ok": True}

    def _drill(self, doc: dict[str, Any]) -> Answer:
        on = doc.get("on")
        if not isinstance(on, bool):
            raise _BadRequest("`on` must be true or false")
        self._session.set_drill(_text(doc, "name"), on)
        return "200 OK", {"ok": True}

    def _scenario(self, doc: dict[str, Any]) -> Answer:
        self._session.scenarios.start(_text(doc, "name"))
        return "200 OK", {"ok": True}

    def _deploy(self, doc: dict[str, Any]) -> Answer:
        return "200 OK", {"ok": True, "version": self._session.world.deploy_new_version()}

    def _home(self, doc: dict[str, Any]) -> Answer:
        self._session.open_home(_text(doc, "user"))
        return "200 OK", {"ok": True}

    def _home_click(self, doc: dict[str, Any]) -> Answer:
        self._session.home_click(_text(doc, "user"), action_id=_text(doc, "action_id"), value=_text(doc, "value"))
        return "200 OK", {"ok": True}


class _BadRequest(ValueError):
    pass


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in _LOOPBACK_HOSTS


def _read_json(environ: WSGIEnvironment) -> dict[str, Any]:
    if not str(environ.get("CONTENT_TYPE", "")).startswith("application/json"):
        raise _BadRequest("send JSON (Content-Type: application/json)")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise _BadRequest("body too large")
    try:
        doc = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except ValueError as exc:
        raise _BadRequest("body is not JSON") from exc
    if not isinstance(doc, dict):
        raise _BadRequest("body must be a JSON object")
    return doc


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"`{key}` is required")
    return value


def _json(start_response: StartResponse, status: str, doc: Any) -> list[bytes]:
    body = json.dumps(doc).encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *_SECURITY,
        ],
    )
    return [body]
