"""The GitHub client against the simulated GitHub on loopback (the GitHub calls)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.clients.github import GitHub, WorkflowRun
from bot.clients.github_errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotConfigured,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    github_message,
)
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub

TOKEN = "ghp_test_token_0123456789"
REPO = "acme/trading"
SHA_OLD, SHA_BAD, SHA_NOW = "a" * 40, "b" * 40, "c" * 40
BASE = f"/repos/{REPO}"


@pytest.fixture
def sim() -> Iterator[SimGitHub]:
    with SimGitHub(token=TOKEN, repository=REPO) as github:
        yield github


def client(
    url: str,
    *,
    token: str | None = TOKEN,
    repository: str | None = REPO,
    timeout_s: float = 2.0,
    http: httpx.Client | None = None,
) -> GitHub:
    return GitHub(api_url=url, token=token, repository=repository, timeout_s=timeout_s, http=http)


@pytest.fixture
def gh(sim: SimGitHub) -> Iterator[GitHub]:
    github = client(sim.url)
    yield github
    github.close()


def test_check_runs_follow_pagination_and_send_github_headers() -> None:
    with SimGitHub(token=TOKEN, repository=REPO, max_per_page=2) as sim:
        for name in ("pnpm verify", "pnpm lint", "pnpm smoke:release", "e2e", "docs"):
            sim.set_check(SHA_NOW, name, "failure" if name == "pnpm lint" else "success")
        sim.set_check(SHA_NOW, "e2e", None)  # re-run: in progress again
        runs = client(sim.url).check_runs(SHA_NOW)
        calls = sim.calls("GET", f"{BASE}/commits/{SHA_NOW}/check-runs")
    by_name = {r.name: r for r in runs}
    assert len(runs) == 5 and by_name["pnpm lint"].conclusion == "failure"
    assert by_name["pnpm verify"].status == "completed" and by_name["pnpm verify"].completed_at is not None
    assert by_name["e2e"].status == "in_progress" and by_name["e2e"].conclusion is None
    assert [c.query.get("page", "1") for c in calls] == ["1", "2", "3"]
    headers = calls[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28" and headers["user-agent"].startswith("trading-opsbot")


def test_pagination_stops_after_five_pages() -> None:
    with SimGitHub(repository=REPO, max_per_page=1) as sim:
        for n in range(8):
            sim.set_check(SHA_NOW, f"check {n}")
        assert len(client(sim.url, token=None).check_runs(SHA_NOW)) == 5
        assert len(sim.calls("GET")) == 5
        assert "authorization" not in sim.calls("GET")[0].headers  # no token configured, none sent


def test_next_page_link_to_another_host_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.test"  # the token never leaves for evil.test
        return httpx.Response(
            200,
            json={
                "total_count": 2,
                "check_runs": [{"name": "pnpm verify", "status": "completed", "conclusion": "success"}],
            },
            headers={"link": '<https://evil.test/next?page=2>; rel="next"'},
        )

    http = httpx.Client(transport=httpx.MockTransport(answer))
    assert [r.name for r in client("https://api.test", http=http).check_runs(SHA_NOW)] == ["pnpm verify"]


def test_unexpected_answer_is_unavailable() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"check_runs": [{}]})))
    with pytest.raises(GitHubUnavailable, match="unexpected answer"):
        client("https://api.test", http=http).check_runs(SHA_NOW)


def test_deployments_and_rollback_target(sim: SimGitHub, gh: GitHub) -> None:
    old = sim.add_deployment(SHA_OLD)
    sim.add_deployment(SHA_BAD, state="failure")
    now = sim.add_deployment(SHA_NOW)
    sim.add_deployment("d" * 40, environment="staging")
    assert [d.id for d in gh.deployments()] == [now, now - 2, old]  # newest first, production only
    # In production GitHub leaves the older success as it was; elsewhere it marks it inactive.
    assert [s.state for s in gh.deployment_statuses(old)] == ["success"]
    staging_old = sim.add_deployment("e" * 40, environment="staging")
    sim.add_deployment("f" * 40, environment="staging")
    assert [s.state for s in gh.deployment_statuses(staging_old)] == ["inactive", "success"]
    target = gh.latest_successful_deployment("production", exclude_sha=SHA_NOW[:7])  # health gives a short sha
    assert target is not None and target.id == old and target.sha == SHA_OLD and target.ref == "main"
    assert gh.latest_successful_deployment("production", exclude_sha=None) is not None
    assert gh.latest_successful_deployment("staging", exclude_sha="f" * 40).sha == "e" * 40  # type: ignore[union-attr]
    assert sim.calls("GET", f"{BASE}/deployments")[0].query["environment"] == "production"


def follow(gh: GitHub, run: WorkflowRun, limit: int = 10) -> list[str]:
    seen = [run.status]
    while run.status != "completed" and len(seen) < limit:
        run = gh.workflow_run(run.id)
        seen.append(run.status)
    return [*seen, run.conclusion or ""]


def inputs(request_id: str) -> dict[str, str]:
    return {"target_sha": SHA_OLD, "reason": "auth failures", "request_id": request_id}


def dispatch(gh: GitHub, request_id: str) -> WorkflowRun:
    """Dispatch and read the run GitHub named in its answer."""
    started = datetime.now(UTC)
    dispatched = gh.dispatch_workflow("rollback.yml", ref="main", inputs=inputs(request_id))
    assert dispatched is not None
    run = gh.find_run("rollback.yml", marker=request_id, created_after=started)
    assert run is not None and run.id == dispatched.id and run.html_url == dispatched.html_url
    return run


def test_dispatch_and_follow_the_run_to_completion(sim: SimGitHub, gh: GitHub) -> None:
    with SimBackend(version=SHA_NOW[:7]) as backend:
        sim.on_run_completed = lambda inputs: backend.set_version(inputs["target_sha"][:7])
        run = dispatch(gh, "req-42")
        assert follow(gh, run) == ["queued", "in_progress", "completed", "success"]
        health = httpx.get(f"{backend.url}/api/health", headers={"authorization": "Bearer x"}).json()
    assert health["version"] == SHA_OLD[:7]
    (post,) = sim.calls("POST", f"{BASE}/actions/workflows/rollback.yml/dispatches")
    assert post.body == {
        "ref": "main",
        "inputs": {"target_sha": SHA_OLD, "reason": "auth failures", "request_id": "req-42"},
        "return_run_details": True,
    }
    assert run.display_title.endswith("req-42") and run.html_url.startswith("https://github.com/")
    assert len(run.head_sha) == 40


def test_failing_run_concludes_failure_without_callback(sim: SimGitHub, gh: GitHub) -> None:
    completed: list[dict[str, str]] = []
    sim.on_run_completed = completed.append
    sim.faults.fail_next_run = True
    assert follow(gh, dispatch(gh, "req-1"))[-2:] == ["completed", "failure"]
    assert completed == []
    assert follow(gh, dispatch(gh, "req-2"))[-1] == "success"  # only the next run failed
    assert [c["request_id"] for c in completed] == ["req-2"]


def test_hanging_run_stays_in_progress(sim: SimGitHub, gh: GitHub) -> None:
    sim.faults.hang_runs = True
    seen = follow(gh, dispatch(gh, "req-h"), limit=8)
    assert seen[0] == "queued" and set(seen[1:-1]) == {"in_progress"} and seen[-1] == ""


def test_run_completes_on_time() -> None:
    with SimGitHub(repository=REPO, run_steps=None, run_seconds=0.3) as sim:
        gh = client(sim.url)
        run = dispatch(gh, "req-t")
        assert gh.workflow_run(run.id).status == "in_progress"
        time.sleep(0.35)
        assert gh.workflow_run(run.id).conclusion == "success"


def test_workflow_runs_filter_by_time_and_event(sim: SimGitHub, gh: GitHub) -> None:
    dispatch(gh, "req-a")
    assert [r.display_title for r in gh.workflow_runs("rollback.yml")] == ["rollback req-a"]
    assert gh.workflow_runs("rollback.yml", created_after=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert gh.workflow_runs("rollback.yml", event="push") == []
    assert gh.workflow_runs("deploy.yml") == []
    query = sim.calls("GET", f"{BASE}/actions/workflows/rollback.yml/runs")[2].query
    assert query["event"] == "workflow_dispatch" and query["created"].startswith(">=")


def test_bad_token_is_an_auth_error(sim: SimGitHub) -> None:
    with pytest.raises(GitHubAuthError) as caught:
        client(sim.url, token="ghp_wrong").check_runs(SHA_NOW)
    assert caught.value.status == 401 and caught.value.detail == "Bad credentials"
    sim.status_for(f"{BASE}/deployments", 403)
    with pytest.raises(GitHubAuthError) as forbidden:
        client(sim.url).deployments()
    assert forbidden.value.status == 403


def test_not_found_and_other_4xx(sim: SimGitHub, gh: GitHub) -> None:
    with pytest.raises(GitHubNotFound):
        client(sim.url, repository="acme/other").deployments()
    with pytest.raises(GitHubNotFound):
        gh.workflow_run(999999)
    sim.status_for(f"{BASE}/actions/workflows", 422)
    with pytest.raises(GitHubError) as caught:
        gh.dispatch_workflow("rollback.yml", ref="nope", inputs={})
    assert type(caught.value) is GitHubError and caught.value.status == 422


def test_server_errors_retry_reads_once_and_never_dispatches(sim: SimGitHub, gh: GitHub) -> None:
    sim.status_for(f"{BASE}/deployments", 500, times=1)
    assert gh.deployments() == []  # second attempt answered
    sim.status_for(f"{BASE}/deployments", 502, times=2)
    with pytest.raises(GitHubUnavailable) as caught:
        gh.deployments()
    assert caught.value.status == 502 and caught.value.retryable
    sim.status_for(f"{BASE}/actions", 500, times=5)
    with pytest.raises(GitHubUnavailable):
        gh.dispatch_workflow("rollback.yml", ref="main", inputs=inputs("r"))
    assert len(sim.calls("POST")) == 1  # a retried dispatch could start a second rollback
    assert sim.runs() == []


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_carries_the_reset_time(sim: SimGitHub, gh: GitHub, status: int) -> None:
    reset = sim.rate_limit(times=1, status=status, reset_in_s=120)
    with pytest.raises(GitHubRateLimited) as caught:
        gh.check_runs(SHA_NOW)
    assert caught.value.status == status
    assert caught.value.reset_at == datetime.fromtimestamp(reset, UTC)
    assert "try again after" in github_message(caught.value)
    assert len(sim.calls("GET")) == 1  # not retried: retrying before the reset only burns quota
    assert gh.check_runs(SHA_NOW) == []


def test_slow_answer_times_out_without_retry(sim: SimGitHub) -> None:
    sim.faults.latency_s = 2.0
    started = time.monotonic()
    with pytest.raises(GitHubUnavailable, match="timed out"):
        client(sim.url, timeout_s=0.2).check_runs(SHA_NOW)
    assert time.monotonic() - started < 1.5
    assert len(sim.calls("GET")) == 1


def test_refused_connection_is_unavailable(sim: SimGitHub) -> None:
    url = sim.url
    sim.stop()
    with pytest.raises(GitHubUnavailable, match="refused"):
        client(url).deployments()


@pytest.mark.parametrize("repository", [None, "", "acme", "acme/trading/extra"])
def test_not_configured(repository: str | None) -> None:
    with pytest.raises(GitHubNotConfigured) as caught:
        client("http://127.0.0.1:9", repository=repository).check_runs(SHA_NOW)
    assert "GITHUB_REPOSITORY" in caught.value.detail
    assert "not configured" in github_message(caught.value)


def test_token_is_never_logged(sim: SimGitHub, gh: GitHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim.status_for("/", 500, times=2)
    with pytest.raises(GitHubUnavailable):
        gh.check_runs(SHA_NOW)
    gh.dispatch_workflow("rollback.yml", ref="main", inputs=inputs("r"))
    assert caplog.records and TOKEN not in caplog.text
