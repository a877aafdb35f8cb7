"""Start-up configuration an operator sets: another runbook file, Cosmos container names, the read-only key.

A bad runbook or container map stops `opsbot serve` with one clear line and exit 2, never a traceback.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from bot.bootstrap import build_deps
from bot.runbook.load import load_runbook
from bot.settings import Settings

OPSBOT = Path(sys.executable).with_name("opsbot")
SHIPPED: dict[str, Any] = yaml.safe_load((Path(__file__).parents[2] / "bot" / "runbook" / "runbook.yaml").read_text())
SLACK = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "a-real-looking-signing-secret"}


def write_runbook(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "COSMOS_"))}
    return subprocess.run(
        [str(OPSBOT), "serve", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **SLACK, "OPSBOT_DATABASE_URL": f"sqlite:///{tmp_path}/o.db", **env},
        check=False,
    )


def test_serve_refuses_a_broken_runbook_with_one_clear_line(tmp_path: Path) -> None:
    data = copy.deepcopy(SHIPPED)
    data["go"][1]["id"] = data["go"][0]["id"]  # a duplicate check id
    path = write_runbook(tmp_path, data)
    done = serve(tmp_path, OPSBOT_RUNBOOK=str(path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    refusal = done.stderr[done.stderr.index("opsbot: runbook refused:") :]
    assert refusal == (
        f"opsbot: runbook refused: {path}: invalid runbook:\n  - duplicate id 'go-pnpm-verify' in go and go\n"
    )


def test_serve_refuses_unknown_cosmos_container_names(tmp_path: Path) -> None:
    done = serve(tmp_path, OPSBOT_COSMOS_CONTAINERS='{"orders": "orders_v2"}')
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "configuration refused" in done.stderr and "unknown runbook container(s) ['orders']" in done.stderr


def test_another_runbook_file_is_the_one_the_bot_runs(tmp_path: Path) -> None:
    data = copy.deepcopy(SHIPPED)
    data["stages"][0]["name"] = "Backend validation in the canary region"
    path = write_runbook(tmp_path, data)
    assert load_runbook(path).stages[0].name == "Backend validation in the canary region"
    settings = Settings(_env_file=None, OPSBOT_RUNBOOK=str(path), OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path}/o.db")
    assert build_deps(settings).runbook.stages[0].name == "Backend validation in the canary region"
    shipped = Settings(_env_file=None, OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path}/p.db")
    assert build_deps(shipped).runbook.stages[0].name == SHIPPED["stages"][0]["name"]


def cosmos_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path}/o.db",
        COSMOS_ENDPOINT="http://127.0.0.1:1/",
        COSMOS_KEY="primary-key",
        COSMOS_DATABASE="trading",
        **extra,
    )


def test_reads_use_the_read_only_key_and_only_the_gate_probe_holds_the_primary(tmp_path: Path) -> None:
    deps = build_deps(
        cosmos_settings(
            tmp_path,
            OPSBOT_COSMOS_READONLY_KEY="read-only-key",
            OPSBOT_COSMOS_CONTAINERS={"trading-control": "trading_control_v2"},
        )
    )
    assert deps.cosmos is not None and deps.cosmos_probe is not None
    assert deps.cosmos._key == "read-only-key" and deps.cosmos_probe._key == "primary-key"
    for reader in (deps.cosmos, deps.cosmos_probe):
        assert reader.container_name("trading-control") == "trading_control_v2"
        assert reader.container_name("order") == "order"
    without = build_deps(cosmos_settings(tmp_path))  # no read-only key: both read with the primary
    assert without.cosmos is not None and without.cosmos._key == "primary-key"


def test_container_names_must_be_the_runbooks() -> None:
    with pytest.raises(ValidationError, match="unknown runbook container"):
        Settings(_env_file=None, OPSBOT_COSMOS_CONTAINERS={"trades": "x"})
    with pytest.raises(ValidationError, match="container name is empty"):
        Settings(_env_file=None, OPSBOT_COSMOS_CONTAINERS={"order": " "})


def test_bad_json_settings_are_refused_in_words(tmp_path: Path) -> None:
    done = serve(tmp_path, OPSBOT_CHECK_NAMES="{pnpm verify: CI}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "configuration refused" in done.stderr and "OPSBOT_CHECK_NAMES" in done.stderr
    assert "not JSON" in done.stderr


def test_env_example_names_every_setting_and_loads_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    named = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert aliases <= named, f"missing from .env.example: {sorted(aliases - named)}"
    (tmp_path / ".env").write_text(example, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in named:
        monkeypatch.delenv(name, raising=False)
    settings = Settings()  # a copied .env.example, blanks and all, starts as the documented defaults
    assert settings.check_names == {} and settings.cosmos_containers == {} and settings.runbook_path is None
    assert settings.cosmos_key is None and not settings.operators
