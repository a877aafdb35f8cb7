"""A probe's world without Slack: simulated backend, GitHub and platform auth on loopback, a migrated store,
and a GateContext built on them like the bot builds it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.clients.backend import TradingBackend
from bot.clients.cosmos import build_cosmos
from bot.clients.github import GitHub
from bot.clients.tokens import TokenSource, build_token_source
from bot.gate.context import GateContext
from bot.gate.store import GateStore
from bot.runbook.load import load_runbook
from bot.settings import Settings
from bot.storage.db import make_engine, utcnow
from bot.storage.migrate import upgrade
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub
from rehearsal.sim.jwks import SimPlatformAuth
from rehearsal.sim.stack import CLIENT_ID, CLIENT_SECRET, GITHUB_TOKEN, ISSUER, REPOSITORY, local_settings
from tests.support.gate import CHECKS, SHA

RUNBOOK = load_runbook()


@dataclass
class World:
    auth: SimPlatformAuth
    github: SimGitHub
    backend: SimBackend
    engine: Engine
    database_url: str
    http: httpx.Client = field(default_factory=httpx.Client)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"OPSBOT_ROLLBACK_OWNERS": "UOWNER", **overrides}
        return local_settings(
            database_url=self.database_url,
            backend_url=self.backend.url,
            slack_api_url="http://127.0.0.1:9/",
            auth=self.auth,
            github_url=self.github.url,
            **values,
        )

    def context(
        self,
        *,
        deadline_s: float = 5.0,
        tokens: TokenSource | None = None,
        request_id: str = "ops-test",
        **overrides: Any,
    ) -> GateContext:
        settings = self.settings(**overrides)
        tokens = tokens if tokens is not None else build_token_source(settings, self.http)
        audit = AuditLog(self.engine, replica="test")
        return GateContext(
            settings=settings,
            runbook=RUNBOOK,
            backend=TradingBackend(base_url=settings.trading_api_url, tokens=tokens, http=self.http),
            github=GitHub(
                api_url=settings.github_api_url,
                token=GITHUB_TOKEN,
                repository=REPOSITORY,
                http=self.http,
                timeout_s=3.0,
            ),
            http=self.http,
            tokens=tokens,
            cosmos=build_cosmos(settings, timeout_s=2.0),
            audit=audit,
            engine=self.engine,
            store=GateStore(self.engine, audit),
            request_id=request_id,
            now=utcnow(),
            deadline_at=time.monotonic() + deadline_s,
        )


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    with (
        SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=ISSUER) as auth,
        SimGitHub(token=GITHUB_TOKEN, repository=REPOSITORY) as github,
        SimBackend(jwt_public_key=auth.public_pem(), issuer=ISSUER, version=SHA) as backend,
    ):
        for name in CHECKS:
            github.set_check(SHA, name)
        engine = make_engine(sqlite_url)
        upgrade(engine)
        w = World(auth, github, backend, engine, sqlite_url)
        yield w
        w.http.close()
        engine.dispose()
