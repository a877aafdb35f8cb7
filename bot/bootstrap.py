"""The one place that builds the bot: clients and stores from the settings, the services and the
approvable actions from them, then the Slack app and the background work. Listeners only register;
every collaborator they use is here, built before the first one registers."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.approvals.audit_notes import AuditNotes
from bot.approvals.binding import Binding
from bot.approvals.flow import Flow
from bot.approvals.outbox import Outbox
from bot.approvals.policy import Directory, people_of
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
from bot.cutover.actions import NAME as ADVANCE
from bot.cutover.actions import AdvanceSpec
from bot.cutover.service import CutoverService
from bot.gate.service import GateParts, GateService
from bot.halt.actions import ControlSpec
from bot.halt.breakglass import BreakGlassHalts
from bot.home.facts import HomeParts, HomeSource
from bot.ids import default_replica
from bot.metrics import Metrics
from bot.monitoring.store import MonitoringStore
from bot.monitoring.window import WindowOpener
from bot.rollback.actions import RollbackSpec
from bot.rollback.freeze import FreezeStore
from bot.rollback.plan import Observation
from bot.rollback.runner import RollbackRunner, RunnerConfig, RunnerParts
from bot.rollback.store import RollbackStore
from bot.rollback.world import observe
from bot.runbook.load import load_runbook
from bot.settings import Settings
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade
from bot.storage.roles import runtime_role_problem
from commands.deps import Deps, slack_client
from commands.home_publish import HomePublisher
from commands.monitoring import start_monitor
from commands.rollback import halt_problem
from commands.server.app import build_app
from commands.server.serve import serve_http, serve_socket_mode
from commands.webapi.direct import SlackDirect
from commands.webapi.monitoring import SlackPoster, SlackRenderer
from commands.webapi.notifier import Notifier, NotifierConfig
from commands.webapi.refusals import classify

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger("opsbot.bootstrap")


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
    wire(deps)
    return deps


def wire(deps: Deps) -> None:
    """The services, the approvable actions and what listens to cutover transitions, once."""
    binding = Binding(deps.engine, deps.audit, deps.directory)
    deps.flow = Flow(
        approvals=deps.approvals,
        audit=deps.audit,
        directory=deps.directory,
        actions=deps.actions,
        metrics=deps.metrics,
        clock=deps.now,  # through the deps, whose clock the tests move
        binding=binding,
        audit_notes=AuditNotes(deps.approvals, deps.actions, binding, deps.checkpoints),
        direct=SlackDirect(deps.slack),
        ttl_seconds=deps.settings.approval_ttl_seconds,
        replica=deps.replica,
    )
    deps.breakglass = BreakGlassHalts(
        deps.flow, engine=deps.engine, journal=deps.journal, replays=deps.replays, store_calls=deps.store_calls
    )
    deps.gate = GateService(_gate_parts(deps))
    deps.cutover = _cutover(deps)
    deps.home = HomeSource(_home_parts(deps))
    deps.actions["halt"] = ControlSpec(deps.backend, halting=True)
    deps.actions["resume"] = ControlSpec(deps.backend, halting=False)
    deps.actions[ADVANCE] = AdvanceSpec(
        deps.cutover,
        outbox=deps.approvals.outbox,
        people=people_of(deps.directory),
        announce_channel=deps.settings.announce_channel,
        on_transition=deps.on_cutover_transition,
    )
    deps.actions["rollback"] = _rollback(deps)
    deps.on_cutover_transition.append(_window_opener(deps))


def _gate_parts(deps: Deps) -> GateParts:
    """What a gate evaluation reads; Cosmos through the key that may write the gate's probe documents."""
    return GateParts(
        settings=deps.settings,
        runbook=deps.runbook,
        engine=deps.engine,
        audit=deps.audit,
        backend=deps.backend,
        github=deps.github,
        http=deps.http,
        cosmos=deps.cosmos_probe,
        clock=deps.now,
    )


def _cutover(deps: Deps) -> CutoverService:
    return CutoverService(
        deps.gate,
        engine=deps.engine,
        audit=deps.audit,
        runbook=deps.runbook,
        freeze=deps.freeze,
        clock=deps.now,
        soak_override_s=deps.settings.soak_seconds,
    )


def _home_parts(deps: Deps) -> HomeParts:
    return HomeParts(
        cutover=deps.cutover,
        outbox=deps.approvals.outbox,
        backend=deps.backend,
        runbook=deps.runbook,
        engine=deps.engine,
        audit=deps.audit,
        actions=deps.actions,
        clock=deps.now,
    )


def _rollback(deps: Deps) -> RollbackSpec:
    store = RollbackStore(deps.engine, deps.audit)
    # The data rule, by construction: the only Cosmos object the rollback gets is deps.cosmos, a
    # CosmosReader (no write methods) or None. No CosmosProber is ever built or passed here.
    parts = RunnerParts(
        store=store,
        audit=deps.audit,
        engine=deps.engine,
        backend=deps.backend,
        github=deps.github,
        freeze=deps.freeze,
        runbook=deps.runbook,
        cosmos=deps.cosmos,
        halt_ready=lambda: halt_problem(deps),
        clock=deps.now,
        outbox=deps.approvals.outbox,
    )
    deps.approvals.outbox.on_posted.append(lambda stream, ts: _attach_progress(store, stream, ts))
    runner = RollbackRunner(parts, RunnerConfig.from_settings(deps.settings))

    def observe_now(request_id: str, to: str | None) -> Observation:
        return observe(deps.backend, deps.github, request_id=request_id, to=to)

    return RollbackSpec(deps.runbook, store, runner, deps.approvals, observe_now, deps.now)


def _attach_progress(store: RollbackStore, stream: str, ts: str) -> None:
    parts = stream.split(":")
    if len(parts) == 3 and parts[0] == "rollback" and parts[2] == "progress":
        store.attach_progress(parts[1], ts)


def _window_opener(deps: Deps) -> WindowOpener:
    """Monitoring opens its window on every stage entered (and announces it)."""
    return WindowOpener(
        settings=deps.settings,
        runbook=deps.runbook,
        store=MonitoringStore(deps.engine, deps.audit),
        poster=SlackPoster(deps.slack),
        renderer=SlackRenderer(deps.runbook),
        cosmos_configured=deps.cosmos is not None,
    )


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


def serve(settings: Settings, *, host: str, port: int, threads: int = 16, socket_mode: bool = False) -> int:
    """`opsbot serve`: the bot, its outbox notifier, sweeper and monitor, over HTTP or Socket Mode."""
    deps = build_deps(settings)
    refusal = runtime_role_problem(deps.engine) if settings.is_production else None
    if refusal:  # its role could rewrite the audit log it serves
        print(refusal, file=sys.stderr)
        return 2
    if settings.is_sqlite:
        upgrade(deps.engine)  # the embedded store migrates itself; shared databases use `opsbot db upgrade`
    app = build_app(deps)
    notifier = start_notifier(deps)  # Slack is told from the outbox, never on a decision's path
    sweeper = Sweeper(deps).start()
    # Leader election, then (on the leader only) the monitoring watchers and the App Home refresh.
    home = HomePublisher(deps)
    monitor = start_monitor(deps, jobs=[home.poll])
    try:
        if socket_mode or settings.slack_app_token is not None:
            return serve_socket_mode(settings, app)
        return serve_http(app, deps, host=host, port=port, threads=threads)
    finally:
        monitor.stop()
        home.close()
        sweeper.stop()
        notifier.stop()
