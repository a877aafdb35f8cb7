"""Everything a handler needs, built once by the entry point and passed in (never imported)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy import Engine

from bot.approvals.actions import ActionSpec
from bot.approvals.flow import Flow
from bot.approvals.policy import Directory
from bot.approvals.store import ApprovalStore
from bot.audit.checkpointer import Checkpointer
from bot.audit.journal import Journal
from bot.audit.log import AuditLog
from bot.audit.replays import ReplayStore
from bot.clients.backend import TradingBackend
from bot.clients.cosmos import CosmosReader
from bot.clients.github import GitHub
from bot.cutover.service import CutoverService
from bot.gate.service import GateService
from bot.halt.breakglass import BreakGlassHalts
from bot.home.facts import HomeSource
from bot.metrics import Metrics
from bot.rollback.freeze import FreezeStore
from bot.runbook.model import Runbook
from bot.runbook.transitions import Hook
from bot.settings import Settings
from bot.storage.db import utcnow


@dataclass
class Deps:
    settings: Settings
    directory: Directory
    engine: Engine
    audit: AuditLog
    approvals: ApprovalStore
    backend: TradingBackend
    slack: WebClient
    metrics: Metrics
    replica: str
    runbook: Runbook
    github: GitHub
    freeze: FreezeStore
    http: httpx.Client
    # Signed requests already taken (bot.audit.replays); the local journal of audit rows the store could not take.
    replays: ReplayStore
    journal: Journal
    # Drift, monitoring and /rollback read Cosmos through `cosmos` (the read-only key when configured);
    # only the gate's probe-document check gets `cosmos_probe`, which may write its own probe documents.
    cosmos: CosmosReader | None = None  # None when not configured
    cosmos_probe: CosmosReader | None = None
    clock: Callable[[], datetime] = utcnow
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    # Work done after the ack (store, backend and Slack calls); sized for a few slow calls at once.
    workers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="opsbot-work")
    )
    # Halts, resumes and approval clicks: never queued behind reads, gate probes or monitoring on `workers`.
    # Each holds its thread through the read-back after its write, so a burst of halts against a slow
    # backend needs room: sized like `workers`, still bounded.
    critical: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="opsbot-critical")
    )
    # The break-glass's bounded store claims (bot.halt.breakglass): a hung store holds these, not the caller.
    store_calls: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="opsbot-store")
    )
    # Signs the audit chain's head after executed actions and every few minutes (bot.audit.checkpointer).
    checkpoints: Checkpointer | None = None
    # Called once per cutover stage entered (bot.runbook.transitions.notify); monitoring opens its window here.
    on_cutover_transition: list[Hook] = field(default_factory=list)
    # The domain services, built from the fields above once they are all there (commands.server.services).
    # The services, built once by bot.bootstrap.wire before any listener registers.
    flow: Flow = field(init=False)
    breakglass: BreakGlassHalts = field(init=False)
    gate: GateService = field(init=False)
    cutover: CutoverService = field(init=False)
    home: HomeSource = field(init=False)

    def now(self) -> datetime:
        return self.clock()


def slack_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        # Slack answers `ratelimited` with Retry-After; honour it a couple of times before giving up.
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1), RateLimitErrorRetryHandler(max_retry_count=2)],
    )
