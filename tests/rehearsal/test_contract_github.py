"""The bot's GitHub calls and the simulated GitHub's answers, checked against GitHub's published
REST description (`@octokit/openapi`, pinned in package.json)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.clients.github import GitHub
from bot.clients.github_errors import GitHubError
from rehearsal.sim import github_docs
from rehearsal.sim.github import SimGitHub
from tests.support.common import click
from tests.support.contracts.github_rest import Exchange, problems, recorder, version
from tests.support.rollback import OWNER, finished, request, running_stack

TOKEN = "ghp_contract_0123456789"
REPO = "acme/trading"
INPUTS = {"target_sha": "a" * 40, "reason": "auth failures", "request_id": "req-c"}


@pytest.fixture
def exchanges() -> list[Exchange]:
    return []


@pytest.fixture
def sim() -> Iterator[SimGitHub]:
    with SimGitHub(token=TOKEN, repository=REPO, max_per_page=2) as github:
        yield github


@pytest.fixture
def gh(sim: SimGitHub, exchanges: list[Exchange]) -> Iterator[GitHub]:
    http = recorder(exchanges)
    github = GitHub(api_url=sim.url, token=TOKEN, repository=REPO, http=http, sleep=lambda _: None)
    yield github
    http.close()


def test_the_description_is_the_pinned_one() -> None:
    assert version() == "23.0.2"


def test_reads_and_answers_of_checks_deployments_and_runs_match_github(
    sim: SimGitHub, gh: GitHub, exchanges: list[Exchange]
) -> None:
    for name in ("pnpm verify", "pnpm lint", "pnpm smoke:release"):
        sim.set_check("c" * 40, name, "success" if name != "pnpm lint" else None)
    for sha in ("a" * 40, "b" * 40, "c" * 40):  # three: the list answers span pages
        sim.add_deployment(sha)
    assert len(gh.check_runs("c" * 40)) == 3
    target = gh.latest_successful_deployment("production", exclude_sha="c" * 40)
    assert target is not None
    started = datetime.now(UTC)
    dispatched = gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS)
    assert dispatched is not None
    run = gh.workflow_run(dispatched.id)
    assert gh.find_run("rollback.yml", marker="req-c", created_after=started) is not None
    assert run.id == dispatched.id
    sim.faults.withhold_run_details = True
    assert gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS) is None  # the 204 answer
    paths = {e.path for e in exchanges}
    assert any(p.endswith("/check-runs") for p in paths) and any(p.endswith("/statuses") for p in paths)
    assert sum(1 for e in exchanges if e.status == 200 and e.path.endswith("/dispatches")) == 1
    assert [p for e in exchanges for p in problems(e)] == []


def test_github_refusals_of_the_simulator_have_githubs_error_shape(
    sim: SimGitHub, gh: GitHub, exchanges: list[Exchange]
) -> None:
    attempts: list[dict[str, Any]] = [
        {"workflow": "nope.yml"},
        {"inputs": {**INPUTS, "x": "1"}},
        {"ref": "no-such-branch"},
        {"inputs": {f"i{n}": "v" for n in range(26)}},
    ]
    for attempt in attempts:
        with pytest.raises(GitHubError):
            gh.dispatch_workflow(
                attempt.get("workflow", "rollback.yml"),
                ref=attempt.get("ref", "main"),
                inputs=attempt.get("inputs", INPUTS),
            )
    sim.secondary_rate_limit(times=5)
    with pytest.raises(GitHubError):
        gh.deployments()
    statuses = sorted({e.status for e in exchanges})
    assert statuses == [403, 404, 422]
    assert [p for e in exchanges for p in problems(e) if "request:" not in p] == []
    # The too-many-inputs request breaks the description's maxProperties: the check sees what GitHub would.
    flagged = [p for e in exchanges for p in problems(e) if "request:" in p]
    assert len(flagged) == 1 and "inputs" in flagged[0]


def test_a_simulator_that_drifts_from_github_fails_the_check(
    sim: SimGitHub, gh: GitHub, exchanges: list[Exchange], monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_node_id(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = original(*args, **kwargs)
        doc.pop("node_id")
        doc["task"] = 7
        return doc

    original = github_docs.deployment
    monkeypatch.setattr(github_docs, "deployment", without_node_id)
    sim.add_deployment("a" * 40)
    gh.deployments()
    found = [p for e in exchanges for p in problems(e)]
    assert any("node_id" in p for p in found) and any("task: 7 is not of type 'string'" in p for p in found), found


def test_every_github_call_of_a_whole_rollback_matches_github(tmp_path: Path, sqlite_url: str) -> None:
    with running_stack(sqlite_url, tmp_path / "incidents") as stack:
        approval_id, posted = request(stack, text="logins fail --trigger auth")
        click(stack, user=OWNER, approval_id=approval_id, posted=posted)
        row = finished(stack)
        assert row.status == "completed", (row.failed_step, row.failure)
        seen = [
            Exchange(r.method, r.path, r.query, r.body, status, answer) for r, status, answer in stack.github.exchanges
        ]
    kinds = {(e.method, e.path.rsplit("/", 1)[-1]) for e in seen}
    assert ("POST", "dispatches") in kinds and ("GET", "deployments") in kinds and ("GET", "statuses") in kinds
    assert [p for e in seen for p in problems(e)] == []
