"""Named drill scenarios: YAML files of steps applied to the stand-ins, loaded and validated here.

A scenario starts from a clean slate (every drill off, backend healthy), then runs its steps in
order on a background thread: switch drills, set CI checks, record deployments, change what the
backend reports, narrate, wait. Starting another scenario stops the one running.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal

import yaml  # type: ignore[import-untyped]  # as bot/runbook/model.py: types-PyYAML is not installed
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rehearsal.workspace.drills import NAMES, Drills
from rehearsal.workspace.world import LocalWorld

log = logging.getLogger("opsbot.workspace.scenarios")

FOLDER = Path(__file__).with_name("scenarios")
MAX_WAIT_S = 300


def _sha(value: str) -> str:
    if not (7 <= len(value) <= 40) or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{value!r} is not a commit sha (7 to 40 lowercase hex digits)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrillStep(_Strict):
    name: str
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in NAMES:
            raise ValueError(f"unknown drill {value!r}; drills: {', '.join(sorted(NAMES))}")
        return value


class CheckStep(_Strict):
    name: str = Field(min_length=1)
    conclusion: Literal["success", "failure", "cancelled", "timed_out", "in_progress"]
    sha: str | None = None  # default: the commit the backend reports as deployed

    @field_validator("sha")
    @classmethod
    def _valid_sha(cls, value: str | None) -> str | None:
        return None if value is None else _sha(value)


class DeployStep(_Strict):
    sha: str
    state: Literal["success", "failure", "error"] = "success"

    @field_validator("sha")
    @classmethod
    def _valid_sha(cls, value: str) -> str:
        return _sha(value)


class Step(_Strict):
    """Exactly one of the fields."""

    drill: DrillStep | None = None
    check: CheckStep | None = None
    deploy: DeployStep | None = None  # a production deployment; on success the backend reports its sha
    health: Literal["ok", "degraded"] | None = None
    note: str | None = Field(default=None, max_length=500)  # shown in the drills panel
    wait: float | None = Field(default=None, gt=0, le=MAX_WAIT_S)

    @model_validator(mode="after")
    def _one(self) -> Step:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(type(self).model_fields)}; got {given or 'none'}")
        return self


class Scenario(_Strict):
    id: str = ""
    order: int = 100  # the drills panel lists scenarios by this, then by file name
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=1000)
    try_: tuple[str, ...] = Field(default=(), alias="try")
    steps: tuple[Step, ...] = Field(min_length=1)


class ScenarioError(ValueError):
    pass


def load(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Scenario.model_validate({**raw, "id": path.stem} if isinstance(raw, dict) else raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ScenarioError(f"scenario {path.name}: {exc}") from exc


def load_all(folder: Path = FOLDER) -> dict[str, Scenario]:
    scenarios = sorted((load(path) for path in folder.glob("*.yaml")), key=lambda s: (s.order, s.id))
    return {scenario.id: scenario for scenario in scenarios}


class ScenarioRunner:
    """Runs one scenario at a time; `status()` says where it is."""

    def __init__(self, world: LocalWorld, drills: Drills, scenarios: dict[str, Scenario]) -> None:
        self._world, self._drills, self.scenarios = world, drills, scenarios
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: dict[str, object] | None = None

    def start(self, scenario_id: str) -> None:
        scenario = self.scenarios.get(scenario_id)
        if scenario is None:
            raise ScenarioError(f"no scenario {scenario_id!r}; scenarios: {', '.join(sorted(self.scenarios))}")
        self.stop()
        self._cancel = threading.Event()
        self._drills.all_off()
        self._world.stack.backend.set_health_status("ok")
        with self._lock:
            self._status = {
                "id": scenario.id,
                "name": scenario.name,
                "step": 0,
                "steps": len(scenario.steps),
                "note": "",
                "done": False,
                "error": None,
            }
        self._thread = threading.Thread(
            target=self._run, args=(scenario, self._cancel), daemon=True, name=f"scenario-{scenario.id}"
        )
        self._thread.start()

    def stop(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def status(self) -> dict[str, object] | None:
        with self._lock:
            return dict(self._status) if self._status else None

    def _run(self, scenario: Scenario, cancel: threading.Event) -> None:
        try:
            for index, step in enumerate(scenario.steps, start=1):
                if cancel.is_set() or (step.wait is not None and cancel.wait(step.wait)):
                    return
                self._apply(step)
                self._update(step=index, **({"note": step.note} if step.note else {}))
            self._update(done=True)
        except Exception as exc:  # a step the stand-ins refused: shown in the panel
            log.exception("scenario %s failed", scenario.id)
            self._update(error=str(exc), done=True)

    def _update(self, **changes: object) -> None:
        with self._lock:
            if self._status is not None:
                self._status.update(changes)

    def _apply(self, step: Step) -> None:
        world = self._world
        if step.drill is not None:
            self._drills.set(step.drill.name, step.drill.enabled)
        elif step.check is not None:
            conclusion = None if step.check.conclusion == "in_progress" else step.check.conclusion
            world.set_check(step.check.sha or world.stack.backend.version, step.check.name, conclusion)
        elif step.deploy is not None:
            world.deploy(step.deploy.sha, step.deploy.state)
        elif step.health is not None:
            world.stack.backend.set_health_status(step.health)
