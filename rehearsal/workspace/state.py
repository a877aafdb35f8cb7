"""Where the local workspace keeps its state, and how it is saved, loaded and reset.

The bot's own state is its database (OPSBOT_DATABASE_URL, by default the SQLite file ./opsbot.db),
used exactly as `opsbot serve` uses it. Beside it, a folder `<database file>.workspace/` keeps what
the stand-ins would otherwise forget on a restart: the channel transcript (so the Approve buttons of
pending requests are still there), the simulated backend's trading-control state and version, and
which drills are on; and the incident bundles the bot writes during rehearsed rollbacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

RESET_HINT = "reset: opsbot workspace --reset (or delete the file)"


@dataclass(frozen=True)
class StatePaths:
    database_url: str
    db_file: Path | None  # the SQLite file; None for other databases (nothing here deletes those)
    folder: Path

    @property
    def transcript(self) -> Path:
        return self.folder / "workspace.json"

    @property
    def incidents(self) -> Path:
        return self.folder / "incidents"

    def describe(self) -> str:
        where = str(self.db_file) if self.db_file else _hide_password(self.database_url)
        return f"state: {where} (and {self.folder}/); {RESET_HINT}"


def paths_for(database_url: str, *, cwd: Path | None = None) -> StatePaths:
    base = cwd or Path.cwd()
    db_file = _sqlite_file(database_url, base)
    folder = Path(str(db_file) + ".workspace") if db_file else base / "opsbot-workspace"
    return StatePaths(database_url, db_file, folder)


def _sqlite_file(url: str, base: Path) -> Path | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database or "")
    return (path if path.is_absolute() else base / path).resolve()


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable OPSBOT_DATABASE_URL)"


def reset(paths: StatePaths) -> list[Path]:
    """Delete the SQLite file (with its WAL files) and the folder; what was removed. Refuses other databases."""
    if paths.db_file is None:
        raise ValueError(
            "--reset only deletes a SQLite file; this OPSBOT_DATABASE_URL is another database, "
            "reset it with that database's own tools"
        )
    removed: list[Path] = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(paths.db_file) + suffix)
        if candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    if paths.folder.exists():
        shutil.rmtree(paths.folder)
        removed.append(paths.folder)
    return removed


def load(paths: StatePaths) -> dict[str, Any]:
    """The saved workspace, or {} when there is none or it cannot be read (a fresh start, not a crash)."""
    try:
        doc = json.loads(paths.transcript.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save(paths: StatePaths, doc: dict[str, Any]) -> None:
    """Atomically: a crash mid-write leaves the previous file, never half of one."""
    paths.folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=paths.folder, prefix=".workspace-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out)
        os.replace(tmp, paths.transcript)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
