"""kill -9 of the bot process executing an approved halt, on PostgreSQL with two bot processes: after the
claim, during the backend POST, and after it (before the outcome was recorded). The other process's
sweep resumes it within seconds with the same Idempotency-Key: exactly one effective halt, told in the
card's thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.audit.log import AuditLog
from bot.bootstrap import build_deps
from bot.settings import Settings
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub
from rehearsal.sim.jwks import SimPlatformAuth
from rehearsal.sim.processes import stop
from rehearsal.sim.stack import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    GITHUB_TOKEN,
    ISSUER,
    REPOSITORY,
    SIGNING_SECRET,
    local_settings,
)
from rehearsal.slack.client import SlackSender
from rehearsal.slack.peer import SlackPeer
from tests.support.common import CHANNEL, HALT_A, OPERATOR, ROLES, approval_id_of, text_of, wait_until

ROOT = Path(__file__).resolve().parents[2]
HALT_PATH = "/api/trading-control/halt"
LEASE_S = 2
RESUMED_WITHIN_S = 10.0  # lease + a sweep interval + process scheduling, on a loaded machine


@dataclass
class World:
    peer: SlackPeer
    backend: SimBackend
    env: dict[str, str]
    audit: AuditLog
    settings: Settings


@pytest.fixture
def world(pg_url: str) -> Iterator[World]:
    with (
        SlackPeer(bot_token=BOT_TOKEN) as peer,
        SimGitHub(token=GITHUB_TOKEN, repository=REPOSITORY) as github,
        SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=ISSUER) as auth,
    ):
        backend = SimBackend(jwt_public_key=auth.public_pem(), issuer=ISSUER).start()
        settings = local_settings(
            database_url=pg_url,
            backend_url=backend.url,
            slack_api_url=peer.api_url,
            auth=auth,
            github_url=github.url,
            **ROLES,
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **_env_of(settings),
            "OPSBOT_EXECUTION_LEASE_SECONDS": str(LEASE_S),
        }
        engine = make_engine(pg_url)
        upgrade(engine)
        try:
            yield World(peer, backend, env, AuditLog(engine, replica="test"), settings)
        finally:
            backend.stop()
            engine.dispose()


def _env_of(settings: Settings) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value: Any = getattr(settings, name)
        if value is None or field.alias is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, frozenset):
            value = ",".join(sorted(value))
        out[field.alias] = str(value.value if hasattr(value, "value") else value)
    return out


def start_bot(world: World, replica: str, stop_at: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.crash_proc", stop_at],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        env={**world.env, "OPSBOT_REPLICA_ID": replica},
    )


def sender_for(world: World, process: subprocess.Popen[str]) -> SlackSender:
    """Once the process says where it listens."""
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://"), url
    return SlackSender(bot_url=url, signing_secret=SIGNING_SECRET, peer=world.peer)


def replies(world: World, phrase: str) -> list[dict[str, Any]]:
    return [m for m in world.peer.channel_messages(CHANNEL) if m.get("thread_ts") and phrase in m["text"]]


@pytest.mark.parametrize("kill_at", ["claim", "post", "record"])
def test_kill_9_mid_halt_is_resumed_by_the_other_process_once(world: World, kill_at: str) -> None:
    doomed = start_bot(world, "doomed", "none" if kill_at == "post" else kill_at)
    survivor = start_bot(world, "survivor", "none")  # both start at once
    deps = build_deps(world.settings)  # the test's own view of the store
    try:
        to_doomed, _ = sender_for(world, doomed), sender_for(world, survivor)
        to_doomed.command(user=OPERATOR, command="/halt", text="global fat-finger storm", channel=CHANNEL)
        card = world.peer.wait_for_call(
            "chat.postMessage", where=lambda c: "approve" in str(c.args.get("blocks")), timeout=10
        )[-1]
        approval_id = approval_id_of(card)
        wait_until(lambda: bool((deps.approvals.get(approval_id=approval_id) or card).message_ts), 10)
        if kill_at == "post":
            world.backend.faults.latency_s = 1.5  # the POST is in flight when the process dies
        to_doomed.click(
            user=HALT_A,
            action_id="approve",
            value=approval_id,
            channel=CHANNEL,
            message_ts=str(card.args.get("ts") or "0"),
        )
        if kill_at == "claim":
            assert doomed.stdout is not None and doomed.stdout.readline().strip() == "claimed"
            assert world.backend.calls("POST", HALT_PATH) == []
        elif kill_at == "post":
            wait_until(lambda: len(world.backend.calls("POST", HALT_PATH)) == 1, 10)
        else:
            assert doomed.stdout is not None and doomed.stdout.readline().strip() == "ran"
            assert world.backend.control()["global"]["halted"] is True
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed = time.monotonic()
        wait_until(
            lambda: (deps.approvals.get(approval_id=approval_id) or card).status == "executed", RESUMED_WITHIN_S + 5
        )
        assert time.monotonic() - killed < RESUMED_WITHIN_S

        posts = world.backend.calls("POST", HALT_PATH)
        assert len({p.headers.get("idempotency-key") for p in posts}) == 1  # the same key every time
        assert world.backend.control()["revision"] == 2  # one effective halt
        assert len(posts) == (1 if kill_at == "claim" else 2)
        steps = [e.action for e in world.audit.for_approval(approval_id)]
        assert steps == ["halt.requested", "halt.approved", "halt.resumed", "halt.executed"]
        wait_until(lambda: len(replies(world, "Resumed")) == 1 and len(replies(world, "Applied")) == 1, 10)
        assert "replica `survivor`" in replies(world, "Resumed")[0]["text"]
        row = deps.approvals.get(approval_id=approval_id)
        assert row is not None and row.message_ts
        # The card too, though a send the killed process had claimed waits out its claim (5 s here) first.
        wait_until(lambda: "Applied" in text_of(world.peer.workspace.find_message(CHANNEL, row.message_ts) or {}), 15)
    finally:
        stop(doomed)
        stop(survivor)
        deps.engine.dispose()
        deps.http.close()
