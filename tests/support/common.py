"""Shared fixtures and helpers: a store on SQLite and on PostgreSQL, and the real bot served on loopback."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clients.backend import TradingBackend
from bot.clients.tokens import build_token_source
from bot.storage.db import normalise_url
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall

OPERATOR = "UOPERATOR"
HALT_A = "UHALTA"
HALT_B = "UHALTB"
HALT_C = "UHALTC"
OWNER = "UOWNER"
ADMIN = "UADMIN"
ADMIN2 = "UADMIN2"  # a second admin: cutover advances need one to approve
STRANGER = "USTRANGER"
CHANNEL = "C0INCIDENT"

ROLES = {
    "OPSBOT_OPERATORS": OPERATOR,
    "OPSBOT_HALT_AUTHORITIES": f"{HALT_A},{HALT_B},{HALT_C}",
    "OPSBOT_ROLLBACK_OWNERS": OWNER,
    "OPSBOT_ADMINS": f"{ADMIN},{ADMIN2}",
    # Stage soaks of 0: flows move through stages in seconds; the soak tests set their own.
    "OPSBOT_SOAK_SECONDS": "0",
}


def pg_admin_url() -> str | None:
    url = os.environ.get("OPSBOT_TEST_PG_URL")
    return normalise_url(url) if url else None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test. Mandatory in CI: fail, never skip."""
    admin = pg_admin_url()
    if admin is None:
        if os.environ.get("CI"):
            pytest.fail("CI requires PostgreSQL: OPSBOT_TEST_PG_URL is not set")
        pytest.skip("OPSBOT_TEST_PG_URL is not set (make test starts a local PostgreSQL)")
    name = f"opsbot_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL, which is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/opsbot.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


class Clock:
    """A settable UTC clock, so expiry is tested without sleeping through a TTL."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def stack(sqlite_url: str) -> Iterator[Stack]:
    with Stack(database_url=sqlite_url, overrides=dict(ROLES)) as running:
        yield running


@pytest.fixture
def clock(stack: Stack) -> Clock:
    c = Clock()
    stack.deps.clock = c
    return c


def approval_id_of(call: ApiCall) -> str:
    """The opaque id the Approve button carries (the only thing a button may carry)."""
    for block in call.args.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block["elements"]:
                if element.get("action_id") == "approve":
                    return str(element["value"])
    raise AssertionError(f"no approve button in {call.args}")


def text_of(args: dict[str, Any]) -> str:
    """Everything a person would read in a message: its text and every text object in its blocks."""
    parts = [str(args.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                parts.append(str(node["text"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(args.get("blocks") or [])
    return "\n".join(parts)


def message_text(stack: Stack, ts: str, channel: str = CHANNEL) -> str:
    """What the channel shows now for the message at `ts` (after every update)."""
    found = stack.peer.workspace.find_message(channel, ts)
    assert found is not None, f"no message {ts} in {channel}"
    return text_of(found)


def request_halt(stack: Stack, *, user: str = OPERATOR, text: str = "global fat-finger storm") -> tuple[str, ApiCall]:
    """Ask for a halt and return the approval id and the posted request message."""
    before = len(stack.peer.calls_to("chat.postMessage"))
    response = stack.sender.command(user=user, command="/halt", text=text, channel=CHANNEL)
    assert response.status_code == 200, response.text
    posted = stack.peer.wait_for_call("chat.postMessage", count=before + 1)[-1]
    approval_id = approval_id_of(posted)
    wait_until(lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and bool(row.message_ts))
    return approval_id, posted


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def click(stack: Stack, *, user: str, approval_id: str, posted: ApiCall, action: str = "approve") -> Any:
    ts = str(posted.args.get("ts") or "")
    response = stack.sender.click(user=user, action_id=action, value=approval_id, channel=CHANNEL, message_ts=ts or "0")
    assert response.status_code == 200, response.text
    return response


def short_timeouts(stack: Stack) -> TradingBackend:
    """Rebuild the bot's backend client with 0.3 s timeouts, as a slow backend's test needs."""
    settings = stack.deps.settings
    client = TradingBackend(
        base_url=settings.trading_api_url,
        tokens=build_token_source(settings, stack.deps.http),
        read_timeout_s=0.3,
        write_timeout_s=0.3,
    )
    stack.deps.backend.close()
    stack.deps.backend = client
    stack.deps.actions["halt"].backend = client  # type: ignore[attr-defined]
    stack.deps.actions["resume"].backend = client  # type: ignore[attr-defined]
    return client
