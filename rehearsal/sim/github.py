"""A simulated GitHub REST API (the part the bot uses) on loopback, with fault switches.

Answers with GitHub's documented JSON shapes, `Link` pagination and rate-limit headers. It
refuses dispatches as GitHub does (`rehearsal.sim.github_dispatch`) and answers `return_run_details:
true` with the run's id (200). A workflow dispatch creates a run that goes queued → in_progress →
completed as it is read (`run_steps` reads) or as time passes (`run_seconds`); completion is decided when a read
observes it, and a successful run then calls `on_run_completed(inputs)` before that read is
answered, so a test can make the simulated backend report the rolled-back version.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from rehearsal.loopback import LoopbackHandler, LoopbackServer, wait_for_interrupt
from rehearsal.sim import github_docs as docs
from rehearsal.sim.github_dispatch import error_doc, refuse_dispatch

logger = logging.getLogger("opsbot.sim.github")

Answer = tuple[int, Any, dict[str, str]]  # status, JSON body (None: empty 204), extra headers
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID 0000:0000:000000."
)
# The workflows a fresh simulator has: the revert workflow, with the inputs the bot sends.
DEFAULT_WORKFLOWS: dict[str, dict[str, bool]] = {
    "rollback.yml": {"target_sha": True, "reason": True, "request_id": True},
}


@dataclass
class Faults:
    latency_s: float = 0.0
    fail_next_run: bool = False  # the next dispatched run concludes `failure`
    hang_runs: bool = False  # while set, no run completes
    untitled_runs: bool = False  # runs are titled without the request id (a workflow lacking `run-name`)
    withhold_run_details: bool = False  # dispatches answer 204 without the run's id, as older GitHub did


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class _Injected:
    prefix: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass
class _Run:
    doc: dict[str, Any]
    inputs: dict[str, str]
    started: float
    fail: bool
    reads: int = 0


def _iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, message: str | None = None) -> Answer:
    return status, error_doc(status, message), {}


class _Handler(LoopbackHandler["SimGitHub"]):
    server_version = "github-sim/1"
    sim_logger = logger

    def serve(self, method: str) -> None:
        raw = self.read_body()
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, doc, extra = self.owner._handle(method, parts.path, dict(parse_qsl(parts.query)), headers, raw)
        payload = b"" if doc is None else json.dumps(doc).encode()
        self.send_or_drop(
            status,
            {"content-type": "application/json; charset=utf-8", **extra, "content-length": str(len(payload))},
            payload,
        )


class SimGitHub(LoopbackServer):
    def __init__(
        self,
        *,
        token: str | None = None,
        repository: str = "acme/trading",
        run_steps: int | None = 3,
        run_seconds: float | None = None,
        max_per_page: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(_Handler, host=host, port=port, thread_name="sim-github")
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.exchanges: list[tuple[RecordedRequest, int, Any]] = []  # each request with its status and JSON answer
        self.on_run_completed: Callable[[dict[str, str]], None] | None = None
        self.repository = repository
        self.run_steps, self.run_seconds, self.max_per_page = run_steps, run_seconds, max_per_page
        self._token = token
        self._lock = threading.Lock()
        self._ids = itertools.count(1001)
        self._checks: dict[str, dict[str, dict[str, Any]]] = {}
        self._deployments: list[dict[str, Any]] = []  # oldest first
        self._statuses: dict[int, list[dict[str, Any]]] = {}  # oldest first
        self._runs: list[_Run] = []
        self._injected: list[_Injected] = []
        self._workflows = {name: dict(inputs) for name, inputs in DEFAULT_WORKFLOWS.items()}
        self._refs = {"main"}

    # State, set by tests and rehearsals.

    def set_check(self, sha: str, name: str, conclusion: str | None = "success") -> None:
        """A check run on `sha`; conclusion None means still in progress."""
        done = conclusion is not None
        with self._lock:
            runs = self._checks.setdefault(sha, {})
            run_id = runs[name]["id"] if name in runs else next(self._ids)
            runs[name] = docs.check_run(
                self.url, self.repository, run_id, sha, name, conclusion, _iso(), _iso() if done else None
            )

    def add_workflow(self, file: str, inputs: dict[str, bool]) -> None:
        """A workflow file with `workflow_dispatch` inputs (name -> required); replaces one of that name."""
        with self._lock:
            self._workflows[file] = dict(inputs)

    def remove_workflow(self, file: str) -> None:
        with self._lock:
            self._workflows.pop(file, None)

    def add_ref(self, ref: str) -> None:
        """A branch or tag a dispatch may name (`main` exists from the start)."""
        with self._lock:
            self._refs.add(ref)

    def add_deployment(
        self,
        sha: str,
        environment: str = "production",
        state: str = "success",
        ref: str = "main",
        created_at: datetime | None = None,
    ) -> int:
        """Like GitHub, a new success marks earlier successful deployments of the environment inactive,
        except in a production environment, where GitHub leaves their statuses as they were.
        `created_at` (default now) is when GitHub says the deployment was created."""
        created = _iso(None if created_at is None else created_at.timestamp())
        with self._lock:
            deployment_id = next(self._ids)
            self._deployments.append(
                docs.deployment(
                    self.url, self.repository, deployment_id, sha=sha, ref=ref, environment=environment, created=created
                )
            )
            self._statuses[deployment_id] = []
            if state == "success" and environment != "production":
                for older in self._deployments[:-1]:
                    latest = self._statuses[older["id"]][-1:]
                    if older["environment"] == environment and latest and latest[0]["state"] == "success":
                        self._add_status(older["id"], "inactive")
            self._add_status(deployment_id, state)
            return deployment_id

    def add_deployment_status(self, deployment_id: int, state: str) -> None:
        with self._lock:
            self._add_status(deployment_id, state)

    def status_for(self, path_prefix: str, status: int, times: int = 1) -> None:
        """The next `times` requests whose path starts with `path_prefix` get `status`."""
        with self._lock:
            self._injected.append(_Injected(path_prefix, status, times))

    def rate_limit(self, times: int = 1, *, status: int = 403, reset_in_s: int = 60) -> int:
        """The next `times` requests are rate limited; returns the epoch second of the reset."""
        reset = int(time.time()) + reset_in_s
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        with self._lock:
            self._injected.append(_Injected("/", status, times, headers))
        return reset

    def secondary_rate_limit(self, times: int = 1, *, status: int = 403, retry_after_s: int | None = None) -> None:
        """The next `times` requests hit GitHub's secondary limit: a message saying so, requests left,
        and `retry-after` only when given (GitHub often sends none)."""
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4990",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
        }
        if retry_after_s is not None:
            headers["retry-after"] = str(retry_after_s)
        with self._lock:
            self._injected.append(_Injected("/", status, times, headers, SECONDARY_MESSAGE))

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(run.doc, inputs=dict(run.inputs)) for run in self._runs]

    def calls(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # Serving.

    def _handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(method, path, query, headers, body, time.time())
        with self._lock:
            self.requests.append(request)
        answer = self._answer(method, path, query, headers, body)
        with self._lock:
            self.exchanges.append((request, answer[0], answer[1]))
        return answer

    def _answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Answer:
        self._pause(self.faults.latency_s)
        injected = self._take_injected(path)
        if injected is not None:
            message = injected.message or (
                "API rate limit exceeded for installation ID 1." if injected.headers else None
            )
            return injected.status, _error(injected.status, message)[1], injected.headers
        if self._token is not None and headers.get("authorization") not in (
            f"Bearer {self._token}",
            f"token {self._token}",
        ):
            return _error(401)
        completed: list[dict[str, str]] = []
        status, doc, extra = self._route(method, path, query, body, completed)
        for inputs in completed:  # outside the lock: the callback may call other simulators
            if self.on_run_completed is not None:
                self.on_run_completed(inputs)
        reset = str(int(time.time()) + 3600)
        return (
            status,
            doc,
            {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-reset": reset, **extra},
        )

    def _take_injected(self, path: str) -> _Injected | None:
        with self._lock:
            for injected in self._injected:
                if injected.times > 0 and path.startswith(injected.prefix):
                    injected.times -= 1
                    return injected
            return None

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, completed: list[dict[str, str]]
    ) -> Answer:
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)", path)
        if match is None or match.group(1) != self.repository:
            return _error(404)
        rest = match.group(2)
        with self._lock:
            if method == "POST" and (m := re.fullmatch(r"/actions/workflows/([^/]+)/dispatches", rest)):
                return self._dispatch(m.group(1), body)
            if method != "GET":
                return _error(404)
            if m := re.fullmatch(r"/commits/([^/]+)/check-runs", rest):
                runs = sorted(self._checks.get(m.group(1), {}).values(), key=lambda r: r["id"])
                return self._page(path, query, runs, "check_runs")
            if rest == "/deployments":
                env = query.get("environment")
                found = [d for d in reversed(self._deployments) if env is None or d["environment"] == env]
                return self._page(path, query, found, None)
            if (m := re.fullmatch(r"/deployments/(\d+)/statuses", rest)) and int(m.group(1)) in self._statuses:
                return self._page(path, query, list(reversed(self._statuses[int(m.group(1))])), None)
            if m := re.fullmatch(r"/actions/workflows/([^/]+)/runs", rest):
                return self._page(path, query, self._list_runs(m.group(1), query, completed), "workflow_runs")
            if m := re.fullmatch(r"/actions/runs/(\d+)", rest):
                run = next((r for r in self._runs if r.doc["id"] == int(m.group(1))), None)
                return (200, self._observe(run, completed), {}) if run else _error(404)
        return _error(404)

    def _page(self, path: str, query: dict[str, str], items: list[Any], key: str | None) -> Answer:
        """One page, with GitHub's `Link` header (next/last) when there are more."""
        per_page = max(1, min(int(query.get("per_page") or 30), self.max_per_page))
        page = max(1, int(query.get("page") or 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = [
            f'<{self.url}{path}?{urlencode({**query, "per_page": per_page, "page": n})}>; rel="{rel}"'
            for rel, n in (("next", page + 1), ("last", last))
            if page < last
        ]
        doc = chunk if key is None else {"total_count": len(items), key: chunk}
        return 200, doc, {"link": ", ".join(links)} if links else {}

    def _add_status(self, deployment_id: int, state: str) -> None:
        environment = next(d["environment"] for d in self._deployments if d["id"] == deployment_id)
        self._statuses[deployment_id].append(
            docs.deployment_status(
                self.url,
                self.repository,
                deployment_id,
                next(self._ids),
                state=state,
                environment=environment,
                at=_iso(),
            )
        )

    def _dispatch(self, workflow: str, body: Any) -> Answer:
        refused = refuse_dispatch(self._workflows.get(workflow), self._refs, body)
        if refused is not None:
            return refused
        inputs = dict(body.get("inputs") or {})
        run_id, now = next(self._ids), time.time()
        marker = "" if self.faults.untitled_runs else inputs.get("request_id", "")
        title = f"{workflow.rsplit('.', 1)[0]} {marker}".strip()
        doc = docs.workflow_run(
            self.url,
            self.repository,
            run_id,
            workflow=workflow,
            title=title,
            ref=body["ref"],
            number=len(self._runs) + 1,
            at=_iso(now),
        )
        self._runs.append(_Run(doc, inputs, now, self.faults.fail_next_run))
        self.faults.fail_next_run = False
        if body.get("return_run_details") is True and not self.faults.withhold_run_details:
            return 200, {"workflow_run_id": run_id, "run_url": doc["url"], "html_url": doc["html_url"]}, {}
        return 204, None, {}

    def _list_runs(self, workflow: str, query: dict[str, str], completed: list[dict[str, str]]) -> list[Any]:
        since = query.get("created", "").removeprefix(">=")
        event = query.get("event")
        chosen = [
            r
            for r in reversed(self._runs)
            if r.doc["path"].endswith(f"/{workflow}")
            and (event is None or r.doc["event"] == event)
            and r.doc["created_at"] >= since
        ]
        return [self._observe(run, completed) for run in chosen]

    def _observe(self, run: _Run, completed: list[dict[str, str]]) -> dict[str, Any]:
        """A read advances the run: queued on the first read, then in_progress until it is done."""
        doc = run.doc
        if doc["status"] != "completed":
            run.reads += 1
            by_reads = self.run_steps is not None and run.reads >= self.run_steps
            by_time = self.run_seconds is not None and time.time() - run.started >= self.run_seconds
            if (by_reads or by_time) and not self.faults.hang_runs:
                doc.update(status="completed", conclusion="failure" if run.fail else "success", updated_at=_iso())
                if not run.fail:
                    completed.append(dict(run.inputs))
            elif run.reads > 1 or by_time:
                doc.update(status="in_progress", updated_at=_iso())
        return dict(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal.sim.github", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--repository", default=os.environ.get("GITHUB_REPOSITORY") or "acme/trading")
    parser.add_argument("--run-seconds", type=float, default=5.0, help="a dispatched run completes after this")
    parser.add_argument(
        "--deployed-sha",
        default="abc1234" + "0" * 33,
        help="sha of the current production deployment (its checks are green)",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN")  # from the environment only: argv is visible in `ps`
    with SimGitHub(
        token=token,
        repository=args.repository,
        run_steps=None,
        run_seconds=args.run_seconds,
        host=args.host,
        port=args.port,
    ) as sim:
        sim.add_deployment("9f8e7d6" + "0" * 33)  # the previous stable release: the rollback target
        sim.add_deployment(args.deployed_sha)
        for check in ("pnpm verify", "pnpm lint", "pnpm smoke:release"):
            sim.set_check(args.deployed_sha, check)
        auth = "GITHUB_TOKEN required" if token else "any token accepted"
        print(f"simulated GitHub API for {args.repository} on {sim.url} ({auth}); Ctrl-C to stop", flush=True)
        wait_for_interrupt()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
