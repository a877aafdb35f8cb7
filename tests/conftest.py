"""Fixtures every test folder shares (they are defined in tests/support), and each folder's marker."""

from pathlib import Path

import pytest

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


KINDS = ("unit", "integration", "e2e", "rehearsal")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
