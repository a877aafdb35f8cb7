"""The `cosmos_server` fixture: one local Cosmos protocol server (rehearsal/sim/cosmos.py) per test session.

Import it from conftest.py. It needs node and `npm ci` (node_modules); without them the tests
that use it are skipped locally and fail in CI, where a missing server is a broken build.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rehearsal.sim import cosmos as sim_cosmos


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[sim_cosmos.CosmosServer]:
    if not sim_cosmos.available():
        why = f"node or {sim_cosmos.CLI} is missing (run `npm ci`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires the Cosmos test server: {why}")
        pytest.skip(f"Cosmos test server not installed: {why}")
    with sim_cosmos.CosmosServer() as server:
        yield server
