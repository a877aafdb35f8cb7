"""Each GitHub answer the bot reads, with one field of the wrong type or left out, through the real
client: refused as an unexpected answer naming the field; a dispatch whose answer is refused is never sent
again (a second one would start a second rollback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.clients.github import GitHub
from bot.clients.github_errors import GitHubUnavailable, github_message
from rehearsal.sim.github import SimGitHub
from tests.support.answers import Tamper, changed, drop, set_to

TOKEN = "ghp_answers_0123456789"
REPO = "acme/trading"
SHA = "c" * 40
INPUTS = {"target_sha": "a" * 40, "reason": "auth failures", "request_id": "req-a"}


@dataclass(frozen=True)
class Seen:
    """What the stand-in holds: one check run, one deployment and one dispatched rollback run."""

    deployment: int
    run: int


Call = Callable[[GitHub, Seen], object]


def _checks(gh: GitHub, seen: Seen) -> object:
    return gh.check_runs(SHA)


def _deployments(gh: GitHub, seen: Seen) -> object:
    return gh.deployments()


def _statuses(gh: GitHub, seen: Seen) -> object:
    return gh.deployment_statuses(seen.deployment)


def _runs(gh: GitHub, seen: Seen) -> object:
    return gh.workflow_runs("rollback.yml")


def _run(gh: GitHub, seen: Seen) -> object:
    return gh.workflow_run(seen.run)


def _dispatch(gh: GitHub, seen: Seen) -> object:
    return gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS)


CASES = [
    (
        _checks,
        "/check-runs",
        set_to("check_runs", 0, "status", to=1),
        "check runs: check_runs[0].status: Input should be a valid string",
    ),
    (_checks, "/check-runs", drop("check_runs", 0, "name"), "check runs: check_runs[0].name: Field required"),
    (_checks, "/check-runs", set_to("check_runs", to={}), "check runs: check_runs: Input should be a valid list"),
    (_deployments, "/deployments", set_to(0, "id", to="1001"), "deployments: [0].id: Input should be a valid integer"),
    (_deployments, "/deployments", drop(0, "sha"), "deployments: [0].sha: Field required"),
    (
        _deployments,
        "/deployments",
        set_to(0, "created_at", to=1_700_000_000),
        "deployments: [0].created_at: Input should be an ISO 8601 time as a string",
    ),
    (
        _statuses,
        "/statuses",
        set_to(0, "state", to=None),
        "deployment statuses: [0].state: Input should be a valid string",
    ),
    (_statuses, "/statuses", drop(0, "created_at"), "deployment statuses: [0].created_at: Field required"),
    (
        _runs,
        "/rollback.yml/runs",
        set_to("workflow_runs", 0, "html_url", to=None),
        "workflow runs: workflow_runs[0].html_url: Input should be a valid string",
    ),
    (
        _runs,
        "/rollback.yml/runs",
        drop("workflow_runs", 0, "head_sha"),
        "workflow runs: workflow_runs[0].head_sha: Field required",
    ),
    (_run, "/actions/runs/", set_to("id", to="run"), "workflow run: id: Input should be a valid integer"),
    (_run, "/actions/runs/", drop("status"), "workflow run: status: Field required"),
    (
        _dispatch,
        "/dispatches",
        set_to("workflow_run_id", to="1"),
        "dispatch: workflow_run_id: Input should be a valid integer",
    ),
    (_dispatch, "/dispatches", drop("html_url"), "dispatch: html_url: Field required"),
]


@pytest.fixture
def sim() -> Iterator[SimGitHub]:
    with SimGitHub(token=TOKEN, repository=REPO) as github:
        yield github


@pytest.fixture
def seen(sim: SimGitHub) -> Seen:
    sim.set_check(SHA, "pnpm verify")
    deployment = sim.add_deployment(SHA)
    direct = client(sim.url)
    dispatched = direct.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS)
    direct.close()
    assert dispatched is not None
    return Seen(deployment, dispatched.id)


def client(url: str) -> GitHub:
    return GitHub(api_url=url, token=TOKEN, repository=REPO, timeout_s=2.0, sleep=lambda _: None)


@pytest.mark.parametrize(("call", "path", "change", "named"), CASES, ids=[case[3].split(": I")[0] for case in CASES])
def test_a_malformed_answer_is_refused_naming_the_field(
    sim: SimGitHub, seen: Seen, call: Call, path: str, change: Callable[[Any], None], named: str
) -> None:
    asked_before = len(sim.requests)
    with Tamper(sim.url, changed(path, change)) as tamper:
        gh = client(tamper.url)
        with pytest.raises(GitHubUnavailable) as caught:
            call(gh, seen)
        gh.close()
    assert caught.value.status == 200
    assert caught.value.detail == f"unexpected answer from GitHub ({named})"
    assert f"(HTTP 200: unexpected answer from GitHub ({named}))" in github_message(caught.value)
    assert len(sim.requests) == asked_before + 1  # neither read again nor, above all, dispatched again


def test_the_nulls_github_sends_are_read_as_nothing(sim: SimGitHub, seen: Seen) -> None:
    """An unnamed run (`name`, `display_title` null) and an empty status link are GitHub's shape, not faults."""

    def unnamed(path: str, doc: Any) -> Any:
        if path.endswith(f"/actions/runs/{seen.run}"):
            doc.update(name=None, display_title=None)
        if path.endswith("/statuses"):
            doc[0]["target_url"] = ""
        return doc

    with Tamper(sim.url, unnamed) as tamper:
        gh = client(tamper.url)
        run = gh.workflow_run(seen.run)
        (status,) = gh.deployment_statuses(seen.deployment)
        gh.close()
    assert (run.id, run.name, run.display_title) == (seen.run, "", "")
    assert run.created_at.tzinfo is not None and status.target_url is None and status.state == "success"
