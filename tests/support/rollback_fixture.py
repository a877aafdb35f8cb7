"""The `rb` fixture: a started, seeded stack for the /rollback tests (see tests/support/rollback.py).

Load it with `pytest_plugins = ["tests.support.rollback_fixture"]`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rehearsal.sim.stack import Stack
from tests.support.rollback import running_stack


@pytest.fixture
def rb(tmp_path: Path, sqlite_url: str) -> Iterator[Stack]:
    with running_stack(sqlite_url, tmp_path / "incidents") as stack:
        yield stack
