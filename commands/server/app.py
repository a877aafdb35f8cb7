"""The app factory: deps from settings, and a Bolt app with every listener group registered.

Nothing here runs at import time; the entry point (bot.cli) and the tests call these functions.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.approvals.outbox import Outbox
from bot.approvals.policy import Directory
from bot.approvals.refused import card_refused
from bot.approvals.store import ApprovalStore
from bot.approvals.sweep import sweep
from bot.audit.checkpointer import Checkpointer
from bot.audit.journal import Journal
from bot.audit.keys import configured_key
from bot.audit.log import AuditLog
from bot.audit.replays import ReplayStore
from bot.clients.backend import TradingBackend
from bot.clients.cosmos import build_cosmos
from bot.clients.deadline import deadline_client
from bot.clients.github import GitHub
from bot.clients.tokens import build_token_source
from bot.ids import default_replica
from bot.metrics import Metrics
from bot.rollback.freeze import FreezeStore
from bot.runbook.load import load_runbook
from bot.settings import Settings
from bot.storage.db import make_engine
from commands.deps import Deps, slack_client
from commands.notifier import Notifier, NotifierConfig
from commands.refusals import classify
from commands.server.services import attach_services

log = logging.getLogger("opsbot.app")


def build_deps(settings: Settings, *, slack: WebClient | None = None, backend: TradingBackend | None = None) -> Deps:
    engine = make_engine(settings.database_url)
    replica = settings.replica_id or default_replica()
    audit = AuditLog(engine, replica=replica)
    outbox = Outbox(engine)
    approvals = ApprovalStore(
        engine, audit, outbox, replica=replica, lease=timedelta(seconds=settings.execution_lease_seconds)
    )
    # An approval card's ts, once the notifier posted it, is what later clicks and threads point at.
    outbox.on_posted.append(lambda stream, ts: _attach_card(approvals, stream, ts))
    http = deadline_client()
    if backend is None:
        backend = TradingBackend(base_url=settings.trading_api_url, tokens=build_token_source(settings, http))
    github = GitHub(
        api_url=settings.github_api_url,
        token=settings.github_token.get_secret_value() if settings.github_token else None,
        repository=settings.github_repository,
    )
    deps = Deps(
        settings=settings,
        directory=Directory.from_settings(settings),
        engine=engine,
        audit=audit,
        approvals=approvals,
        backend=backend,
        slack=slack or slack_client(settings),
        metrics=Metrics(),
        replica=replica,
        runbook=load_runbook(Path(settings.runbook_path) if settings.runbook_path else None),
        github=github,
        freeze=FreezeStore(engine),
        http=http,
        replays=ReplayStore(engine, audit),
        journal=Journal(settings.audit_journal_path, replica=replica),
        cosmos=build_cosmos(settings, readonly=True),
        cosmos_probe=build_cosmos(settings),
        checkpoints=_checkpointer(settings, engine, replica),
    )
    attach_services(deps)
    return deps


def _checkpointer(settings: Settings, engine: Engine, replica: str) -> Checkpointer:
    text = settings.audit_signing_key.get_secret_value() if settings.audit_signing_key else None
    key = configured_key(text, settings.database_url, create=True)
    assert key is not None  # create=True always yields one
    return Checkpointer(engine, key, replica=replica, interval=timedelta(seconds=settings.audit_checkpoint_seconds))


def _attach_card(approvals: ApprovalStore, stream: str, ts: str) -> None:
    if stream.startswith("approval:"):
        approvals.attach_message(approval_id=stream.removeprefix("approval:"), message_ts=ts)


def start_notifier(deps: Deps, config: NotifierConfig | None = None) -> Notifier:
    """Deliver the outbox to Slack from this process (every replica runs one; rows are claimed)."""
    notifier = Notifier(
        outbox=deps.approvals.outbox,
        settings=deps.settings,
        audit=deps.audit,
        http=deps.http,
        replica=deps.replica,
        config=config,
    )
    deps.approvals.outbox.on_given_up.append(
        lambda row, error: card_refused(deps.flow, row, classify(error, channel=row.channel))
    )
    return notifier.start()


def build_app(deps: Deps) -> App:
    from commands import (  # the listener groups; imported here to keep import time inert
        approvals,
        cutover,
        gate,
        halt,
        home,
        monitoring,
        rollback,
    )

    settings = deps.settings
    if settings.slack_signing_secret is None:
        raise ValueError("SLACK_SIGNING_SECRET is required: request signatures are always verified")
    app = App(
        client=deps.slack,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Who the bot is comes from its settings, never from Slack: a restart while Slack (auth.test)
        # is down still takes commands.
        authorize=lambda team_id, enterprise_id: identity(deps, team_id, enterprise_id),
        # Ack from the request's own thread (no 10 ms ack polling); the work after the ack is queued on
        # deps.workers by commands.common.after_ack.
        process_before_response=True,
        listener_executor=deps.workers,
        # No auth.test call while building the app: start-up must not depend on reaching Slack.
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    app.error(_on_error)
    halt.register(app, deps)
    approvals.register(app, deps)
    gate.register(app, deps)
    cutover.register(app, deps)
    rollback.register(app, deps)
    monitoring.register(app, deps)  # after rollback: its button starts the /rollback request flow
    home.register(app, deps)
    return app


def identity(deps: Deps, team_id: str | None, enterprise_id: str | None) -> AuthorizeResult:
    """The installation, from settings: one workspace, one bot token (no auth.test on the request path)."""
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token=deps.slack.token or "",
        bot_user_id=deps.settings.slack_bot_user_id or None,
    )


def _on_error(error: Exception) -> BoltResponse:
    log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
    return BoltResponse(status=200, body=":x: Something went wrong; nothing was done.")


class Sweeper:
    """Expires requests, escalates unconfirmed break-glass and resumes executions whose process died,
    in the background: once at start-up, then every `interval` s."""

    def __init__(self, deps: Deps, *, interval: float = 2.0) -> None:
        self._deps = deps
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsbot-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            try:
                sweep(self._deps.flow)
            except Exception:
                log.exception("sweep failed; will try again")
            self.catch_up()
            if self._deps.checkpoints is not None:  # never raises
                self._deps.checkpoints.tick()
            if self._stop.wait(self._interval):
                return

    def catch_up(self) -> None:
        """Merge the journal once the store is back; forget replay keys past Slack's window."""
        try:
            self._deps.breakglass.merge_journal()
            self._deps.replays.prune()
        except Exception as exc:  # the store is still out: the next round tries again
            log.warning("journal merge postponed: %s", type(exc).__name__)
