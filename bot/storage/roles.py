"""PostgreSQL roles: migrations run as the owner role; the bot's runtime role gets only what it needs,
and on the audit tables only INSERT and SELECT, so it can neither rewrite history nor switch off the
triggers that guard it (only an owner can ALTER or DROP a table's triggers)."""

from __future__ import annotations

import sys

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from bot.settings import Settings
from bot.storage.db import is_postgres, make_engine, normalise_url
from bot.storage.migrate import upgrade

AUDIT_TABLES = ("audit_event", "audit_checkpoint")

FIX_GRANTS = (
    "run `opsbot db upgrade` with OPSBOT_MIGRATION_DATABASE_URL set to the owner role and "
    "OPSBOT_DATABASE_URL to a separate login role, which it grants INSERT and SELECT only on the "
    "audit tables"
)


def role_of(url: str) -> str | None:
    return make_url(normalise_url(url)).username


def grant_runtime(conn: Connection, role: str) -> None:
    """What the bot needs at run time: data access on its tables, and on the audit tables append and read."""
    quote = conn.dialect.identifier_preparer.quote
    who, schema = quote(role), quote(str(conn.execute(text("SELECT current_schema()")).scalar_one()))
    audit = ", ".join(AUDIT_TABLES)
    for statement in (
        f"GRANT USAGE ON SCHEMA {schema} TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
        f"REVOKE ALL ON {audit}, alembic_version FROM {who}",
        f"GRANT SELECT, INSERT ON {audit} TO {who}",
        f"GRANT SELECT ON alembic_version TO {who}",
    ):
        conn.execute(text(statement))


def upgrade_command(settings: Settings) -> int:
    """`opsbot db upgrade` (the Procfile's release phase): migrate as the owner, then grant the runtime role."""
    if settings.is_production and not settings.is_sqlite and settings.migration_database_url is None:
        print(
            "opsbot db upgrade: production migrates as the owner role: set OPSBOT_MIGRATION_DATABASE_URL "
            "(OPSBOT_DATABASE_URL is the bot's runtime role, which must not own the tables)",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(settings.migration_database_url or settings.database_url)
    upgrade(engine)
    runtime = role_of(settings.database_url)
    if is_postgres(engine) and settings.migration_database_url and runtime:
        with engine.begin() as conn:
            if runtime != conn.execute(text("SELECT current_user")).scalar_one():
                grant_runtime(conn, runtime)
                print(f"granted the runtime role {runtime}: INSERT and SELECT only on {', '.join(AUDIT_TABLES)}")
    engine.dispose()
    print("database is at the latest schema")
    return 0


OWNERSHIP = text("""
SELECT t.tableowner, current_user, pg_has_role(current_user, t.tableowner, 'USAGE'),
       has_table_privilege(current_user, t.schemaname || '.' || t.tablename, 'UPDATE, DELETE, TRUNCATE, TRIGGER')
  FROM pg_tables t WHERE t.tablename = 'audit_event' AND t.schemaname = current_schema()
""")


def runtime_role_problem(engine: Engine) -> str | None:
    """Why this role must not serve production (it could rewrite the audit log), or None."""
    if not is_postgres(engine):
        return None
    with engine.connect() as conn:
        row = conn.execute(OWNERSHIP).first()
    if row is None:
        return "opsbot: refusing to serve: the audit table does not exist yet; " + FIX_GRANTS
    owner, current, acts_as_owner, may_rewrite = row
    if acts_as_owner:
        how = "owns" if owner == current else f"can act as {owner}, the owner of"
        return (
            f"opsbot: refusing to serve: the database role {current} {how} audit_event, so it could rewrite "
            f"the audit log; " + FIX_GRANTS
        )
    if may_rewrite:
        return (
            f"opsbot: refusing to serve: the database role {current} may UPDATE, DELETE or TRUNCATE "
            f"audit_event; " + FIX_GRANTS
        )
    return None
