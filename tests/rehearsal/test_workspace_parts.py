"""The local workspace's pieces without a running stack: people, scenarios, usage hints, state paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # as bot/runbook/model.py: types-PyYAML is not installed

from bot.approvals.policy import Role
from bot.settings import Settings
from rehearsal.workspace import people
from rehearsal.workspace.channel import COMMANDS
from rehearsal.workspace.scenario_runner import ScenarioError, load, load_all
from rehearsal.workspace.state import paths_for, reset

ROOT = Path(__file__).resolve().parents[2]


def test_people_hold_the_contracts_roles_with_a_second_person_wherever_an_approval_needs_one() -> None:
    roles: dict[str, Any] = dict(people.role_settings())
    settings = Settings(_env_file=None, **roles)
    assert len(settings.operators) == 1
    assert len(settings.halt_authorities) == 2
    assert len(settings.rollback_owners) == 2
    assert len(settings.admins) == 2  # a cutover advance: one admin requests, another approves
    assert {p.user_id for p in people.PEOPLE} == (
        settings.operators | settings.halt_authorities | settings.rollback_owners | settings.admins
    )
    assert all(len(p.roles) == 1 and isinstance(p.roles[0], Role) for p in people.PEOPLE)


def test_usage_hints_are_the_manifests() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    hints = {c["command"]: c["usage_hint"] for c in manifest["features"]["slash_commands"]}
    assert hints == {name: hint for name, (hint, _) in COMMANDS.items()}


def test_the_shipped_scenarios_load() -> None:
    scenarios = load_all()
    assert {s.name for s in scenarios.values()} == {"Release day", "Auth failures after cutover", "Rollback under load"}
    assert all(s.try_ and s.description for s in scenarios.values())


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"drill": {"name": "meteor-strike"}}, "unknown drill"),
        ({"check": {"name": "pnpm lint", "conclusion": "maybe"}}, "conclusion"),
        ({"deploy": {"sha": "not-a-sha"}}, "not a commit sha"),
        ({"wait": 5, "note": "two in one"}, "exactly one of"),
        ({"wait": 100000}, "wait"),
        ({"reboot": True}, "reboot"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_problem(tmp_path: Path, step: dict[str, object], problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "Bad", "description": "bad", "steps": [step]}), encoding="utf-8")
    with pytest.raises(ScenarioError, match=problem):
        load(path)


def test_state_sits_beside_the_sqlite_file_and_reset_removes_both(tmp_path: Path) -> None:
    paths = paths_for("sqlite:///./opsbot.db", cwd=tmp_path)
    assert paths.db_file == (tmp_path / "opsbot.db").resolve()
    assert paths.folder == Path(str(paths.db_file) + ".workspace")
    assert "opsbot workspace --reset" in paths.describe()
    paths.db_file.write_bytes(b"x")
    Path(str(paths.db_file) + "-wal").write_bytes(b"x")
    paths.incidents.mkdir(parents=True)
    assert len(reset(paths)) == 3
    assert not paths.db_file.exists() and not paths.folder.exists()


def test_reset_never_touches_a_shared_database(tmp_path: Path) -> None:
    paths = paths_for("postgresql://opsbot:secret@db.internal/opsbot", cwd=tmp_path)
    assert paths.db_file is None and "secret" not in paths.describe()
    with pytest.raises(ValueError, match="only deletes a SQLite file"):
        reset(paths)
