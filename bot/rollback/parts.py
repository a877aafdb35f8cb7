"""What the rollback sequence is given: its settings and the only parts it may touch.

`RunnerParts.cosmos` is a `CosmosReader` or None: the data rule by construction. The reader has no
method that writes, no Cosmos writer (`CosmosProber`) is ever part of a rollback, and with
OPSBOT_COSMOS_READONLY_KEY set the reader holds the account's read-only key, so Cosmos refuses writes too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from bot.approvals.outbox import Outbox
from bot.audit.log import AuditLog
from bot.clients.backend import TradingBackend
from bot.clients.cosmos import CosmosReader
from bot.clients.github import GitHub
from bot.rollback.freeze import FreezeStore
from bot.rollback.store import RollbackStore
from bot.runbook.model import Runbook
from bot.settings import Settings


@dataclass(frozen=True)
class RunnerConfig:
    workflow: str | None
    run_timeout_s: float
    version_timeout_s: float
    poll_s: float
    incident_dir: Path | None  # an optional copy of each bundle; the store keeps the evidence
    announce_channel: str | None
    ref: str = "main"

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerConfig:
        return cls(
            settings.rollback_workflow,
            settings.rollback_run_timeout_seconds,
            settings.rollback_version_timeout_seconds,
            settings.rollback_poll_seconds,
            Path(settings.incident_dir) if settings.incident_dir else None,
            settings.announce_channel,
        )

    @property
    def budget(self) -> timedelta:
        """Longer than any rollback can run: older running rows were left by a stopped bot."""
        return timedelta(seconds=self.run_timeout_s + self.version_timeout_s + 600)


@dataclass(frozen=True)
class RunnerParts:
    """Everything the sequence may touch. Cosmos is a reader or nothing: there is no writer to hand in."""

    store: RollbackStore
    audit: AuditLog
    engine: Engine
    backend: TradingBackend
    github: GitHub
    freeze: FreezeStore
    runbook: Runbook
    cosmos: CosmosReader | None
    halt_ready: Callable[[], str | None]  # why /halt is not available, or None
    clock: Callable[[], datetime]
    outbox: Outbox  # every Slack message of the sequence goes through it (bot.rollback.messages)
