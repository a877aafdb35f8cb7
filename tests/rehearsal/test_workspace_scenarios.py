"""The three shipped scenarios, each run to its end in a live workspace, and what they change.

Each must apply every step without an error and leave the stand-ins as its description says. "Release
day" deploys def5678 to production and its release smoke finishes 40 s in, so its run takes that long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rehearsal.sim.jwks import JWKS_PATH
from rehearsal.workspace.scenario_runner import load_all
from rehearsal.workspace.world import DEPLOYED
from tests.support.workspace import OPERATOR, Running, eventually, everything, running_workspace

RELEASE = "def5678a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e"
RELEASE_DAY_S = 90  # the scenario waits 40 s for its smoke check


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(tmp_path_factory.mktemp("workspace"), use_cosmos=False) as running:
        yield running


def github_get(ws: Running, path: str) -> Any:
    github = ws.session.world.stack.github
    response = httpx.get(
        f"{github.url}/repos/{github.repository}{path}",
        timeout=10,
        headers={"Authorization": "Bearer ghp_local_stand_in"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def checks_on(ws: Running, sha: str) -> dict[str, str | None]:
    runs = github_get(ws, f"/commits/{sha}/check-runs")["check_runs"]
    return {run["name"]: run["conclusion"] for run in runs}


def start(ws: Running, scenario: str) -> None:
    response = ws.post("/api/scenario", {"name": scenario})
    assert response.status_code == 200, response.text


def finished(ws: Running, timeout: float) -> dict[str, Any]:
    status: dict[str, Any] = eventually(
        lambda: (s := ws.state()["scenario"]) and s["done"] and s, timeout=timeout, what="the scenario to finish"
    )
    return status


def release_day_midway(ws: Running) -> None:
    """Deployed, verify and lint green, the release smoke still running: the gate says NO-GO for it."""
    eventually(lambda: "still running" in str((ws.state()["scenario"] or {}).get("note")), what="the deploy")
    assert ws.state()["world"]["backend"]["version"] == RELEASE[:12]  # what the page shows as deployed
    newest = github_get(ws, "/deployments?environment=production")[0]
    assert newest["sha"] == RELEASE
    assert github_get(ws, f"/deployments/{newest['id']}/statuses")[0]["state"] == "success"
    assert checks_on(ws, RELEASE) == {"pnpm verify": "success", "pnpm lint": "success", "pnpm smoke:release": None}
    ws.command(OPERATOR, "/gate")
    card = everything(ws.find(OPERATOR, f"Release go/no-go: NO-GO for backend {RELEASE}", timeout=30))
    assert "'pnpm verify' succeeded on def5678a9b0c" in card
    smoke = next(line for line in card.splitlines() if "`go-pnpm-smoke`" in line)
    assert "*UNKNOWN*" in smoke, smoke


def release_day_after(ws: Running) -> None:
    assert "pnpm smoke:release passed on def5678" in ws.state()["scenario"]["note"]
    assert checks_on(ws, RELEASE)["pnpm smoke:release"] == "success"
    assert checks_on(ws, DEPLOYED)["pnpm smoke:release"] == "success"  # the previous release is untouched


def auth_failures_after(ws: Running) -> None:
    assert httpx.get(ws.session.world.stack.auth.url + JWKS_PATH, timeout=10).status_code == 503
    assert ws.state()["world"]["backend"]["health"] == "degraded"


def rollback_under_load_after(ws: Running) -> None:
    drills = {d["name"]: d["on"] for d in ws.state()["drills"]}
    assert drills["backend-slow"] and ws.state()["world"]["backend"]["health"] == "degraded"


MIDWAY: dict[str, Callable[[Running], None]] = {"release-day": release_day_midway}
AFTER: dict[str, Callable[[Running], None]] = {
    "release-day": release_day_after,
    "auth-failures-after-cutover": auth_failures_after,
    "rollback-under-load": rollback_under_load_after,
}


@pytest.mark.timeout(RELEASE_DAY_S + 60)
@pytest.mark.parametrize("scenario", sorted(load_all()))
def test_each_shipped_scenario_runs_every_step_and_changes_what_it_says(ws: Running, scenario: str) -> None:
    assert set(AFTER) == set(load_all())  # a new scenario needs its own check here
    start(ws, scenario)
    if scenario in MIDWAY:
        MIDWAY[scenario](ws)
    status = finished(ws, RELEASE_DAY_S)
    assert status["id"] == scenario
    assert status["error"] is None, status["error"]
    assert status["step"] == status["steps"] == len(load_all()[scenario].steps)
    AFTER[scenario](ws)
