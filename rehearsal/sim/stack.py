"""The real bot served on loopback against the local stand-ins (Slack peer, simulated backend).

Used by the tests, the benchmark and local rehearsals: the bot is built exactly as `opsbot serve`
builds it; only the URLs it talks to point at this machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from waitress.server import create_server

from bot.bootstrap import build_deps, start_notifier
from bot.settings import Settings
from bot.storage.migrate import upgrade
from commands.deps import Deps
from commands.server.app import build_app
from commands.server.web import SERVER_OPTIONS, Router
from commands.webapi.notifier import Notifier, NotifierConfig
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub
from rehearsal.sim.jwks import SimPlatformAuth
from rehearsal.slack.client import SlackSender
from rehearsal.slack.peer import SlackPeer

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

SIGNING_SECRET = "local-signing-secret-0123456789abcdef"  # noqa: S105 (a loopback-only stand-in)
BOT_TOKEN = "xoxb-local-opsbot"  # noqa: S105
JWT_SECRET = "local-jwt-secret-for-hs256-compatibility"  # noqa: S105 (used by tests of HS256 setups)
CLIENT_ID = "trading-opsbot"
CLIENT_SECRET = "local-client-secret-for-platform-auth"  # noqa: S105
GITHUB_TOKEN = "ghp_local_stand_in"  # noqa: S105
REPOSITORY = "acme/trading"
ROLLBACK_WORKFLOW = "rollback.yml"
ISSUER = "platform-service"

Wsgi = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


class HttpServer:
    """A waitress server on a free loopback port, in a background thread."""

    def __init__(self, wsgi: Wsgi, *, host: str = "127.0.0.1", port: int = 0, threads: int = 16) -> None:
        server: Any = create_server(
            wsgi, host=host, port=port, threads=threads, ident="opsbot", asyncore_loop_timeout=0.2, **SERVER_OPTIONS
        )
        self._server = server
        self.url = f"http://{host}:{server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="opsbot-http", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        # waitress's loop runs while its socket map is non-empty: emptying it is what ends run().
        self._server._map.clear()
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown()
        self._server.close()


def local_settings(
    *,
    database_url: str,
    backend_url: str,
    slack_api_url: str,
    auth: SimPlatformAuth,
    github_url: str,
    **overrides: Any,
) -> Settings:
    """Settings pointing every client at the local stand-ins, with real RS256 client-credentials tokens."""
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "OPSBOT_DATABASE_URL": database_url,
        "TRADING_API_URL": backend_url,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "PLATFORM_JWT_JWKS_URL": auth.jwks_url,
        "PLATFORM_TOKEN_URL": auth.token_url,
        "OPSBOT_CLIENT_ID": CLIENT_ID,
        "OPSBOT_CLIENT_SECRET": CLIENT_SECRET,
        "GITHUB_API_URL": github_url,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_REPOSITORY": REPOSITORY,
        "OPSBOT_ROLLBACK_WORKFLOW": ROLLBACK_WORKFLOW,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Stack:
    """Peer + backend + bot, started together and stopped together."""

    database_url: str
    overrides: dict[str, Any] = field(default_factory=dict)
    backend_latency_s: float = 0.0
    # Quick polls and retries, so a test of Slack faults takes seconds (the outbox clock can be faked too).
    notifier_config: NotifierConfig = field(
        default_factory=lambda: NotifierConfig(
            idle_poll_s=0.05, first_retry=timedelta(seconds=0.1), max_retry=timedelta(seconds=1)
        )
    )
    peer: SlackPeer = field(init=False)
    auth: SimPlatformAuth = field(init=False)
    github: SimGitHub = field(init=False)
    backend: SimBackend = field(init=False)
    deps: Deps = field(init=False)
    server: HttpServer = field(init=False)
    sender: SlackSender = field(init=False)
    notifier: Notifier = field(init=False)

    def start(self) -> Stack:
        self.peer = SlackPeer(bot_token=BOT_TOKEN).start()
        self.auth = SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=ISSUER).start()
        self.github = SimGitHub(token=GITHUB_TOKEN, repository=REPOSITORY).start()
        self.backend = SimBackend(jwt_public_key=self.auth.public_pem(), issuer=ISSUER).start()
        self.backend.faults.latency_s = self.backend_latency_s
        settings = local_settings(
            database_url=self.database_url,
            backend_url=self.backend.url,
            slack_api_url=self.peer.api_url,
            auth=self.auth,
            github_url=self.github.url,
            **self.overrides,
        )
        self.deps = build_deps(settings)
        upgrade(self.deps.engine)
        app = build_app(self.deps)
        self.notifier = start_notifier(self.deps, self.notifier_config)
        self.server = HttpServer(Router(app, self.deps)).start()
        self.sender = SlackSender(
            bot_url=self.server.url + "/slack/events", signing_secret=SIGNING_SECRET, peer=self.peer
        )
        return self

    def stop(self) -> None:
        self.server.stop()
        # Work queued after acks must not outlive the stand-ins it talks to.
        self.deps.workers.shutdown(wait=True, cancel_futures=True)
        self.deps.critical.shutdown(wait=True, cancel_futures=True)
        self.deps.store_calls.shutdown(wait=False, cancel_futures=True)  # a hung store's claim is not waited for
        self.notifier.stop()
        self.sender.close()
        self.peer.stop()
        self.backend.stop()
        self.github.stop()
        self.auth.stop()
        self.deps.backend.close()
        self.deps.engine.dispose()
        self.deps.github.close()
        self.deps.http.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
