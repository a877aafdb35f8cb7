"""Serving a built app: HTTP with waitress (a production WSGI server), or Socket Mode (bot.bootstrap.serve
builds the app and the background work, then calls one of these)."""

from __future__ import annotations

import gc
import json
import logging
import sys
import threading

from slack_bolt import App

from bot.settings import Settings
from commands.deps import Deps
from commands.server.web import EVENTS_PATH, MAX_BODY_BYTES, SERVER_OPTIONS, Router

log = logging.getLogger("opsbot.serve")


def settle_heap() -> None:
    """Move everything built at start-up (modules, the app, settings) out of the collector's sight.

    The ~150k objects of the imported libraries otherwise make every full (gen-2) collection take
    tens of milliseconds, a pause that stalls every in-flight ack; a backlog of lazy work (each item
    holds a copy of its request) is what triggers those collections when the backend is slow.
    """
    gc.collect()
    gc.freeze()


def serve_http(app: App, deps: Deps, *, host: str, port: int, threads: int) -> int:
    """POST /slack/events and the health endpoints with waitress, until the process is stopped."""
    from waitress import serve as waitress_serve

    settle_heap()
    log.info("serving %s on http://%s:%d (replica %s)", EVENTS_PATH, host, port, deps.replica)
    print(f"opsbot listening on http://{host}:{port}{EVENTS_PATH}", flush=True)
    waitress_serve(
        Router(app, deps),
        host=host,
        port=port,
        threads=threads,
        ident="opsbot",
        max_request_body_size=MAX_BODY_BYTES,
        **SERVER_OPTIONS,
    )
    return 0


def socket_mode_refused(error: str) -> str:
    """The one line an operator sees when Slack will not open a socket; names the variable, never its value."""
    return (
        f"opsbot: Socket Mode could not connect: Slack refused SLACK_APP_TOKEN ({error}); set it to an "
        "app-level token (xapp-…) with the connections:write scope, or unset it to serve HTTP"
    )


# What an operator is told when Slack sends `disconnect`; the SDK reconnects on each of these by itself.
_DISCONNECT_NOTICES = {
    "warning": "Slack will close this Socket Mode connection in a few seconds; reconnecting",
    "refresh_requested": "Slack asked for a fresh Socket Mode connection; reconnecting",
    "link_disabled": (
        "opsbot: Slack turned Socket Mode off for this app (link_disabled): no commands arrive "
        "until it is on again (socket_mode_enabled: true in manifest.yaml, or the app's Socket Mode "
        "page), or unset SLACK_APP_TOKEN to serve HTTP"
    ),
}


def socket_notice(raw: str) -> str | None:
    """The line to show for a Socket Mode message, if it is a `disconnect` worth telling about."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "disconnect":
        return None
    return _DISCONNECT_NOTICES.get(str(message.get("reason")))


def _tell_disconnects(raw: str) -> None:
    notice = socket_notice(raw)
    if notice is None:
        return
    if notice.startswith("opsbot:"):  # the bot cannot fix this itself: one line on stderr, like a refusal
        print(notice, file=sys.stderr, flush=True)
    else:
        log.info(notice)


def serve_socket_mode(settings: Settings, app: object) -> int:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    if settings.slack_app_token is None:
        print("opsbot: --socket-mode needs SLACK_APP_TOKEN (xapp-…)", file=sys.stderr)
        return 2
    assert isinstance(app, App)
    app_token = settings.slack_app_token.get_secret_value()
    handler = SocketModeHandler(app, app_token)
    handler.client.on_message_listeners.append(_tell_disconnects)
    log.info("connecting in Socket Mode")
    try:
        # Opened here rather than inside handler.connect(): a refusal is then one clear line, not the
        # SDK's error log followed by a traceback. Reconnects later open fresh URLs through the SDK.
        handler.client.wss_uri = app.client.apps_connections_open(app_token=app_token)["url"]
    except SlackApiError as exc:
        print(socket_mode_refused(str(exc.response.get("error") or exc.response.status_code)), file=sys.stderr)
        return 2
    except OSError as exc:  # URLError and friends, after the client's own retry
        print(
            f"opsbot: Socket Mode could not reach Slack at SLACK_API_URL ({settings.slack_api_url}): "
            f"{type(exc).__name__}",
            file=sys.stderr,
        )
        return 2
    try:
        handler.connect()  # type: ignore[no-untyped-call]
        state = "connected" if handler.client.is_connected() else "WebSocket not open yet, retrying"
        print(f"opsbot in Socket Mode: {state}", flush=True)
        threading.Event().wait()  # the socket's threads do the work; Ctrl-C or SIGTERM ends the process
    finally:
        handler.close()  # type: ignore[no-untyped-call]
    return 0
