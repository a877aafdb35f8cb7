"""`opsbot workspace` (and `opsbot run` without Slack credentials): start the rehearsal, print its URL.

Blocks until Ctrl-C or SIGTERM, then stops everything it started (the Cosmos-protocol server and
Prometheus are child processes: leaving them behind would hold their ports).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import webbrowser
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING

from bot import logs
from rehearsal.sim.stack import HttpServer
from rehearsal.workspace import people
from rehearsal.workspace.server import WorkspaceApp
from rehearsal.workspace.session import Session
from rehearsal.workspace.state import paths_for, reset

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

DEFAULT_PORT = 3000
CREDENTIALS_HINT = (
    "To serve the real Slack workspace instead, set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
    "(and SLACK_APP_TOKEN for Socket Mode)."
)


def run_workspace(
    database_url: str, *, port: int = DEFAULT_PORT, wipe: bool = False, open_browser: bool | None = None
) -> int:
    paths = paths_for(database_url)
    if wipe:
        try:
            removed = reset(paths)
        except ValueError as exc:
            print(f"opsbot workspace: {exc}", file=sys.stderr)
            return 2
        print("reset: removed " + (", ".join(map(str, removed)) or "nothing (there was no state yet)"), flush=True)
    logs.configure("WARNING")  # the page is the interface; the terminal only shows problems
    try:
        app = _Late()
        server = HttpServer(app, host="127.0.0.1", port=port)  # bind before starting anything: fail fast
    except OSError as exc:
        print(
            f"opsbot workspace: cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another with "
            "--port N (0 picks a free one)",
            file=sys.stderr,
        )
        return 2
    server.start()  # answers 503 "starting" until the session is up
    try:
        session = Session(paths).start()
    except BaseException:
        server.stop()
        raise
    try:
        app.target = WorkspaceApp(session)
        url = server.url + "/"
        _announce(url, session)
        if open_browser if open_browser is not None else _can_open_browser():
            webbrowser.open(url)
        _wait_for_stop()
    finally:
        server.stop()
        session.stop()
    return 0


class _Late:
    """The WSGI app, known once the session has started; the port is bound before that."""

    def __init__(self) -> None:
        self.target: WorkspaceApp | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
            return [b"starting\n"]
        return self.target(environ, start_response)


def _announce(url: str, session: Session) -> None:
    who = ", ".join(f"{p.name} ({'/'.join(r.value.replace('_', ' ') for r in p.roles)})" for p in people.PEOPLE)
    cosmos = (
        "Cosmos: local Cosmos-protocol server"
        if session.world.cosmos is not None
        else f"Cosmos: not running ({session.world.cosmos_problem}); the Cosmos checks will say so"
    )
    prometheus = (
        "Prometheus: local, scraping the simulated backend's /metrics every second"
        if session.world.prometheus is not None
        else f"Prometheus: not running ({session.world.prometheus_problem})"
    )
    print(
        f"Local workspace (rehearsal against local stand-ins; nothing reaches Slack or production): {url}\n"
        f"  people: {who}\n  {cosmos}\n  {prometheus}\n  {session.paths.describe()}\n  {CREDENTIALS_HINT}\n"
        "  Ctrl-C to stop.",
        flush=True,
    )


def _can_open_browser() -> bool:
    """Only for a person at a desktop: never in CI, never from a pipe, never on a bare console."""
    if os.environ.get("CI") or not sys.stdout.isatty():
        return False
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _wait_for_stop() -> None:
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
