"""What GitHub refuses in a workflow dispatch, its secondary rate limit, and the run id a dispatch
answers with, against the simulated GitHub on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.clients.github import SECONDARY_MIN_WAIT_S, GitHub
from bot.clients.github_errors import GitHubError, GitHubNotFound, GitHubRateLimited, github_message
from rehearsal.sim.github import SimGitHub

TOKEN = "ghp_test_token_0123456789"
REPO = "acme/trading"
BASE = f"/repos/{REPO}"
INPUTS = {"target_sha": "a" * 40, "reason": "auth failures", "request_id": "req-7"}


@pytest.fixture
def sim() -> Iterator[SimGitHub]:
    with SimGitHub(token=TOKEN, repository=REPO) as github:
        yield github


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def gh(sim: SimGitHub, waits: list[float]) -> Iterator[GitHub]:
    github = GitHub(api_url=sim.url, token=TOKEN, repository=REPO, timeout_s=2.0, sleep=waits.append)
    yield github
    github.close()


def refusal(
    gh: GitHub, workflow: str = "rollback.yml", ref: str = "main", inputs: dict[str, str] | None = None
) -> GitHubError:
    with pytest.raises(GitHubError) as caught:
        gh.dispatch_workflow(workflow, ref=ref, inputs=INPUTS if inputs is None else inputs)
    return caught.value


def test_a_workflow_file_that_does_not_exist_is_404_and_names_the_workflow_setting(gh: GitHub, sim: SimGitHub) -> None:
    refused = refusal(gh, workflow="revert.yml")
    assert isinstance(refused, GitHubNotFound) and refused.status == 404
    assert "workflow name" in github_message(refused)
    assert sim.runs() == []


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"inputs": {**INPUTS, "force": "yes"}}, 'Unexpected inputs provided: ["force"]'),
        ({"inputs": {f"i{n}": "x" for n in range(26)}}, "greater than the maximum of 25"),
        ({"ref": "release/9.9"}, "No ref found for: release/9.9"),
        ({"inputs": {"target_sha": "a" * 40, "request_id": "r"}}, "Required input 'reason' not provided"),
    ],
)
def test_github_refuses_bad_dispatches_with_422_and_the_bot_says_what_to_fix(
    gh: GitHub, sim: SimGitHub, kwargs: dict[str, object], said: str
) -> None:
    refused = refusal(gh, **kwargs)  # type: ignore[arg-type]
    assert refused.status == 422 and said in refused.detail and not refused.retryable
    message = github_message(refused)
    assert "HTTP 422" in message and said.split(":")[0] in message and "declared inputs" in message
    assert sim.runs() == []


def test_a_declared_workflow_and_branch_are_accepted(gh: GitHub, sim: SimGitHub) -> None:
    sim.add_workflow("deploy.yml", {"sha": True, "note": False})
    sim.add_ref("release/1.2")
    assert gh.dispatch_workflow("deploy.yml", ref="release/1.2", inputs={"sha": "b" * 40}) is not None
    assert [run["head_branch"] for run in sim.runs()] == ["release/1.2"]


def test_the_dispatch_answer_names_the_run_and_a_204_falls_back_to_none(gh: GitHub, sim: SimGitHub) -> None:
    dispatched = gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS)
    assert dispatched is not None and dispatched.id == sim.runs()[0]["id"]
    assert dispatched.html_url.endswith(f"/actions/runs/{dispatched.id}") and dispatched.api_url == sim.runs()[0]["url"]
    sim.faults.withhold_run_details = True
    assert gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS) is None
    assert len(sim.runs()) == 2


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_limit_without_retry_after_waits_a_minute_then_doubles(
    gh: GitHub, sim: SimGitHub, waits: list[float], status: int
) -> None:
    sim.secondary_rate_limit(times=2, status=status)
    assert gh.deployments() == []  # the third attempt is answered
    assert waits == [SECONDARY_MIN_WAIT_S, 2 * SECONDARY_MIN_WAIT_S]
    assert len(sim.calls("GET", f"{BASE}/deployments")) == 3


def test_a_secondary_limit_honours_retry_after(gh: GitHub, sim: SimGitHub, waits: list[float]) -> None:
    sim.secondary_rate_limit(times=1, retry_after_s=7)
    assert gh.check_runs("c" * 40) == []
    assert waits == [7.0]


def test_a_dispatch_held_back_by_a_secondary_limit_is_sent_again_once_accepted(
    gh: GitHub, sim: SimGitHub, waits: list[float]
) -> None:
    sim.secondary_rate_limit(times=1)
    assert gh.dispatch_workflow("rollback.yml", ref="main", inputs=INPUTS) is not None
    assert len(sim.calls("POST")) == 2 and len(sim.runs()) == 1 and waits == [SECONDARY_MIN_WAIT_S]


def test_a_lasting_secondary_limit_is_a_retryable_rate_limit_never_a_bad_token(
    gh: GitHub, sim: SimGitHub, waits: list[float]
) -> None:
    sim.secondary_rate_limit(times=10)
    with pytest.raises(GitHubRateLimited) as caught:
        gh.deployments()
    limited = caught.value
    assert limited.secondary and limited.retryable and limited.status == 403
    assert len(waits) == 3 and len(sim.calls("GET")) == 4
    message = github_message(limited)
    assert "secondary rate limit" in message and "GITHUB_TOKEN" not in message


def test_the_primary_limit_is_not_waited_out(gh: GitHub, sim: SimGitHub, waits: list[float]) -> None:
    sim.rate_limit(times=1)
    with pytest.raises(GitHubRateLimited) as caught:
        gh.deployments()
    assert not caught.value.secondary and waits == []


def test_a_client_without_waits_reports_the_secondary_limit_at_once(
    gh: GitHub, sim: SimGitHub, waits: list[float]
) -> None:
    sim.secondary_rate_limit(times=1)
    with pytest.raises(GitHubRateLimited) as caught:
        gh.without_waits().check_runs("c" * 40)
    assert caught.value.secondary and waits == []
    assert gh.check_runs("c" * 40) == []  # the original still waits, and shares the connection pool
