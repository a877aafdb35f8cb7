"""The `rb` fixture: a started, seeded stack for the /rollback tests (see tests/rollback_support.py).

Load it with `pytest_plugins = ["tests.rollback_fixture"]`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sim.stack import Stack
from tests.rollback_support import running_stack


@pytest.fixture
def rb(tmp_path: Path, sqlite_url: str) -> Iterator[Stack]:
    with running_stack(sqlite_url, tmp_path / "incidents") as stack:
        yield stack
