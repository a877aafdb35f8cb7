"""PostgreSQL: migrations as the owner role, the bot as a runtime role that can only append to and read
the audit tables, and production refusing to serve as a role that could rewrite them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.approvals.store import ApprovalStore
from bot.audit.checkpointer import Checkpointer
from bot.audit.keys import Ed25519PrivateKey
from bot.audit.log import Actor, AuditLog, Entry
from bot.storage.db import make_engine
from bot.storage.roles import runtime_role_problem

OPSBOT = Path(sys.executable).with_name("opsbot")
ACTOR = Actor("T1", "UOP")


@dataclass
class Roles:
    owner_url: str
    runtime_url: str


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    url = make_url(pg_url)
    suffix = str(url.database).rsplit("_", 1)[-1]
    owner, runtime = f"opsbot_owner_{suffix}", f"opsbot_runtime_{suffix}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN PASSWORD 'owner-pw'"))
        conn.execute(text(f"CREATE ROLE {runtime} LOGIN PASSWORD 'runtime-pw'"))
        conn.execute(text(f"GRANT CREATE, USAGE ON SCHEMA public TO {owner}"))
    try:
        yield Roles(
            url.set(username=owner, password="owner-pw").render_as_string(hide_password=False),
            url.set(username=runtime, password="runtime-pw").render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN (:a, :b)"),
                {"a": owner, "b": runtime},
            )
            conn.execute(text(f"GRANT {owner}, {runtime} TO CURRENT_USER"))
            conn.execute(text(f"DROP OWNED BY {owner}, {runtime}"))
            conn.execute(text(f"DROP ROLE {owner}"))
            conn.execute(text(f"DROP ROLE {runtime}"))
        admin.dispose()


def opsbot(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "COSMOS_", "JWT_"))}
    return subprocess.run(
        [str(OPSBOT), *args], capture_output=True, text=True, timeout=90, check=False, env={**base, **env}, cwd="/"
    )


def migrate(roles: Roles) -> subprocess.CompletedProcess[str]:
    return opsbot("db", "upgrade", OPSBOT_MIGRATION_DATABASE_URL=roles.owner_url, OPSBOT_DATABASE_URL=roles.runtime_url)


REWRITES = [
    "UPDATE audit_event SET outcome = 'refused' WHERE seq = 1",
    "DELETE FROM audit_event WHERE seq = 2",
    "TRUNCATE audit_event",
    "ALTER TABLE audit_event DISABLE TRIGGER USER",
    "ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete",
    "DROP TRIGGER audit_event_no_update_delete ON audit_event",
    "DELETE FROM audit_checkpoint",
    "TRUNCATE audit_checkpoint",
    "ALTER TABLE audit_checkpoint DISABLE TRIGGER USER",
]


def test_the_runtime_role_appends_and_reads_but_cannot_rewrite_or_unguard_the_audit(roles: Roles) -> None:
    done = migrate(roles)
    assert done.returncode == 0, done.stderr
    assert "INSERT and SELECT only on audit_event, audit_checkpoint" in done.stdout
    engine = make_engine(roles.runtime_url)
    audit = AuditLog(engine, replica="runtime")
    for i in range(3):
        audit.record(Entry(ACTOR, "halt.status", "accepted", {"i": i}))
    ApprovalStore(engine, audit).create(
        action="halt",
        params={"scope": "global", "reason": "r"},
        actor=ACTOR,
        approve_role="halt_authority",
        channel="C1",
        request_id="ops-1",
        ttl_seconds=900,
        now=datetime.now(UTC),
    )
    assert Checkpointer(engine, Ed25519PrivateKey.generate(), replica="runtime").sign_head() is not None
    for statement in REWRITES:
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner"), engine.begin() as conn:
            conn.execute(text(statement))
    result = audit.verify()
    assert result.ok and result.checked == 4
    assert runtime_role_problem(engine) is None
    engine.dispose()


def test_production_refuses_to_serve_as_the_role_that_owns_the_audit_table(roles: Roles) -> None:
    assert migrate(roles).returncode == 0
    production = {
        "OPSBOT_ENV": "production",
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
        "OPSBOT_OPERATORS": "UOP",
        "OPSBOT_HALT_AUTHORITIES": "UHA",
        "OPSBOT_ROLLBACK_OWNERS": "URO",
        "OPSBOT_ADMINS": "UAD",
        "OPSBOT_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    done = opsbot("serve", "--port", "0", OPSBOT_DATABASE_URL=roles.owner_url, **production)
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]  # not the JSON log
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("opsbot: refusing to serve: the database role opsbot_owner_")
    assert "owns audit_event" in lines[0] and "OPSBOT_MIGRATION_DATABASE_URL" in lines[0]
    assert "owner-pw" not in done.stderr
    unmigrated = opsbot("db", "upgrade", OPSBOT_DATABASE_URL=roles.runtime_url, **production)
    assert unmigrated.returncode == 2 and "set OPSBOT_MIGRATION_DATABASE_URL" in unmigrated.stderr
