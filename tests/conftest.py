"""Fixtures every test folder shares; they are defined in tests/support."""

from tests.support.common import clock, db_url, pg_url, sqlite_url, stack

# Fixtures from support modules: cosmos_server; make_stack/gate_stack (/gate, /cutover); world (probes);
# fake_prom, mon_stack (monitoring).
pytest_plugins = [
    "tests.support.cosmos_fixture",
    "tests.support.gate",
    "tests.support.probes",
    "tests.support.monitoring",
]

__all__ = ["clock", "db_url", "pg_url", "sqlite_url", "stack"]
