"""Client of the GitHub REST API for CI evidence, deployments and the rollback workflow (the GitHub calls).

Reads are retried once on 5xx and connection failures; a workflow dispatch is retried only when the
connection was never made, because a second dispatch that did land would start a second rollback.
A secondary rate limit (GitHub refused the request unprocessed) is waited out and the request sent
again, reads and dispatches alike: `retry-after` when GitHub gives it, else at least a minute,
doubling, at most MAX_SECONDARY_WAITS times; the wait function is injectable for tests.
The token goes in one header and is never logged; pagination never follows a link to another host.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from bot.clients.answers import refusal
from bot.clients.deadline import deadline_client, total_deadline
from bot.clients.github_errors import (
    GitHubError,
    GitHubNotConfigured,
    GitHubRateLimited,
    GitHubUnavailable,
    error_for,
)
from bot.clients.github_models import (
    CheckRun,
    CheckRunsPage,
    Deployment,
    Deployments,
    DeploymentStatus,
    DeploymentStatuses,
    DispatchedRun,
    WorkflowRun,
    WorkflowRunsPage,
    utc,
)

# The answers' types are part of this client's interface; they are defined beside it.
__all__ = [
    "CheckRun",
    "Deployment",
    "DeploymentStatus",
    "DispatchedRun",
    "GitHub",
    "WorkflowRun",
    "same_sha",
    "secondary_wait",
]

logger = logging.getLogger("opsbot.github")

T = TypeVar("T")

API_VERSION = "2022-11-28"
USER_AGENT = "trading-opsbot/0.1"
PER_PAGE = 100
MAX_PAGES = 5
# A rollback target is searched through every production deployment, page by page (newest first),
# stopping at the first candidate; this only guards against a `next` link that never ends.
MAX_DEPLOYMENT_PAGES = 1000
RETRY_BACKOFF_S = 0.2
# GitHub's documented minimum wait after a secondary rate limit without `retry-after`; doubled per further wait.
SECONDARY_MIN_WAIT_S = 60.0
MAX_SECONDARY_WAITS = 3


def same_sha(a: str, b: str) -> bool:
    """A short sha (the backend's health answer) matches the full sha it abbreviates."""
    a, b = a.strip().lower(), b.strip().lower()
    return bool(a and b) and (a.startswith(b) or b.startswith(a))


class GitHub:
    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        repository: str | None,
        http: httpx.Client | None = None,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        max_secondary_waits: int = MAX_SECONDARY_WAITS,
    ) -> None:
        self._sleep, self._max_secondary_waits = sleep, max_secondary_waits
        self._api_url = api_url.rstrip("/")
        self._repository = repository.strip() if repository else None
        self._owns_http = http is None
        self._http = http if http is not None else deadline_client()
        self._timeout = httpx.Timeout(timeout_s)
        self._deadline_s = 2 * timeout_s + RETRY_BACKOFF_S  # the whole call, its retry included
        self._headers = {
            "accept": "application/vnd.github+json",
            "x-github-api-version": API_VERSION,
            "user-agent": USER_AGENT,
        }
        if token:
            self._headers["authorization"] = f"Bearer {token}"

    def check_runs(self, sha: str) -> list[CheckRun]:
        return self._get_list(f"{self._repo()}/commits/{quote(sha, safe='')}/check-runs", {}, _check_runs)

    def deployments(self, environment: str = "production") -> list[Deployment]:
        """Newest first."""
        docs = self._get_list(f"{self._repo()}/deployments", {"environment": environment}, _deployments)
        return sorted(docs, key=lambda d: (d.created_at, d.id), reverse=True)

    def deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]:
        """Newest first."""
        docs = self._get_list(f"{self._repo()}/deployments/{int(deployment_id)}/statuses", {}, _statuses)
        return sorted(docs, key=lambda s: s.created_at, reverse=True)

    def latest_successful_deployment(
        self, environment: str = "production", exclude_sha: str | None = None
    ) -> Deployment | None:
        """The rollback target: newest deployment that ever reached `success` with another sha.

        Any success counts, not only the latest status: outside production GitHub marks older
        deployments `inactive` once a newer one succeeds, and those are the rollback candidates."""
        path = f"{self._repo()}/deployments"
        for page in self._pages(path, {"environment": environment}, _deployments, MAX_DEPLOYMENT_PAGES):
            newest = sorted(page, key=lambda d: (d.created_at, d.id), reverse=True)
            for deployment in newest:
                if exclude_sha and same_sha(deployment.sha, exclude_sha):
                    continue
                if any(s.state == "success" for s in self.deployment_statuses(deployment.id)):
                    return deployment
        return None

    def dispatch_workflow(self, workflow: str, *, ref: str, inputs: Mapping[str, str]) -> DispatchedRun | None:
        """Start a `workflow_dispatch` run, asking for its details; None when GitHub answered 204 without
        them (an older GitHub), and the run must then be found by its title (`find_run`)."""
        url = f"{self._api_url}{self._repo()}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        response = self._send("POST", url, body={"ref": ref, "inputs": dict(inputs), "return_run_details": True})
        if response.status_code == 204 or not response.content:
            return None
        return _read(response, DispatchedRun.model_validate)

    def workflow_runs(
        self, workflow: str, *, event: str = "workflow_dispatch", created_after: datetime | None = None
    ) -> list[WorkflowRun]:
        """Runs of one workflow, newest first; `created_after` is inclusive."""
        params = {"event": event}
        if created_after is not None:
            params["created"] = ">=" + _iso(created_after)
        path = f"{self._repo()}/actions/workflows/{quote(workflow, safe='')}/runs"
        runs = self._get_list(path, params, _workflow_runs)
        if created_after is not None:  # GitHub stamps whole seconds, so compare at that resolution
            since = utc(created_after).replace(microsecond=0)
            runs = [r for r in runs if r.created_at >= since]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def workflow_run(self, run_id: int) -> WorkflowRun:
        response = self._send("GET", f"{self._api_url}{self._repo()}/actions/runs/{int(run_id)}")
        return _read(response, WorkflowRun.model_validate)

    def find_run(self, workflow: str, *, marker: str, created_after: datetime) -> WorkflowRun | None:
        """The newest dispatched run whose title (`run-name`) contains `marker`, e.g. a request id.

        Looks a few seconds before `created_after` because our clock and GitHub's are not the same."""
        runs = self.workflow_runs(workflow, created_after=created_after - timedelta(seconds=5))
        return next((run for run in runs if marker in run.display_title), None)

    def without_waits(self) -> GitHub:
        """This client, but a secondary limit is reported at once instead of waited out: for callers
        under a deadline (the gate), where a minute's wait would only end in a time-out."""
        clone = copy.copy(self)
        clone._max_secondary_waits, clone._owns_http = 0, False
        return clone

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _repo(self) -> str:
        repo = self._repository
        if not repo:
            raise GitHubNotConfigured()
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubNotConfigured(f"GITHUB_REPOSITORY must be owner/name, not {repo!r}")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _get_list(self, path: str, params: dict[str, str], page: Callable[[Any], list[T]]) -> list[T]:
        """All items of a paginated list, each page read by `page`, at most MAX_PAGES."""
        return [item for items in self._pages(path, params, page, MAX_PAGES) for item in items]

    def _pages(
        self, path: str, params: dict[str, str], page: Callable[[Any], list[T]], max_pages: int
    ) -> Iterator[list[T]]:
        """Each page of a paginated list in turn, following GitHub's `Link: rel="next"`."""
        url: str | None = f"{self._api_url}{path}"
        query: dict[str, str] | None = {**params, "per_page": str(PER_PAGE)}
        for _ in range(max_pages):
            if url is None:
                return
            response = self._send("GET", url, params=query)
            yield _read(response, page)
            url, query = self._next_page(response), None  # the next link carries the query

    def _next_page(self, response: httpx.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if url and urlsplit(url).netloc != urlsplit(self._api_url).netloc:
            logger.warning("github: ignoring a next-page link to another host")  # the token stays here
            return None
        return url

    def _send(
        self, method: str, url: str, *, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        with total_deadline(self._deadline_s):
            return self._attempts(method, url, params=params, body=body)

    def _attempts(
        self, method: str, url: str, *, params: dict[str, str] | None, body: dict[str, Any] | None
    ) -> httpx.Response:
        path = urlsplit(url).path
        retries_left, secondary_waits = 1, 0
        while True:
            outcome = self._attempt(method, url, params, body)
            if isinstance(outcome, httpx.Response):
                return outcome
            error, retry = outcome
            if isinstance(error, GitHubRateLimited) and error.secondary and secondary_waits < self._max_secondary_waits:
                delay = secondary_wait(error, secondary_waits)
                secondary_waits += 1
                logger.warning(
                    "github %s %s: secondary rate limit; waiting %.0f s before sending again (wait %d)",
                    method,
                    path,
                    delay,
                    secondary_waits,
                )
                self._sleep(delay)
                continue
            logger.warning("github %s %s failed (%s, status %s)", method, path, error.detail, error.status)
            if not retry or retries_left == 0:
                raise error
            retries_left -= 1
            self._sleep(RETRY_BACKOFF_S)

    def _attempt(
        self, method: str, url: str, params: dict[str, str] | None, body: dict[str, Any] | None
    ) -> httpx.Response | tuple[GitHubError, bool]:
        """The answer, or the error with whether sending again is safe and may help."""
        try:
            response = self._http.request(
                method, url, params=params, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            # Only a connection never made is safe to repeat for a dispatch.
            return GitHubUnavailable(_transport_detail(exc)), isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        logger.info("github %s %s -> %d", method, urlsplit(url).path, response.status_code)
        failure = error_for(response)
        if failure is None:
            return response
        return failure, method == "GET" and isinstance(failure, GitHubUnavailable)


def secondary_wait(error: GitHubRateLimited, earlier_waits: int) -> float:
    """Seconds to wait after a secondary limit: GitHub's `retry-after`, else its one-minute minimum, doubling."""
    base = error.retry_after_s if error.retry_after_s is not None else SECONDARY_MIN_WAIT_S
    return float(base * (2**earlier_waits))


def _read(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """The answer read by one of GitHub's models; an answer not in its shape is GitHubUnavailable."""
    try:
        return parse(response.json())
    except ValueError as exc:  # not JSON, or a ValidationError naming the fields that are not GitHub's shape
        what = refusal(exc) if isinstance(exc, ValidationError) else "not JSON"
        raise GitHubUnavailable(f"unexpected answer from GitHub ({what})", response.status_code) from exc


def _check_runs(doc: Any) -> list[CheckRun]:
    return CheckRunsPage.model_validate(doc).check_runs


def _deployments(doc: Any) -> list[Deployment]:
    return Deployments.model_validate(doc).root


def _statuses(doc: Any) -> list[DeploymentStatus]:
    return DeploymentStatuses.model_validate(doc).root


def _workflow_runs(doc: Any) -> list[WorkflowRun]:
    return WorkflowRunsPage.model_validate(doc).workflow_runs


def _iso(at: datetime) -> str:
    return utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _transport_detail(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return f"connection dropped ({type(exc).__name__})"
