"""Rollback step 2: dispatch the revert workflow once, then follow its run until it completes.

The dispatch is never repeated. It asks GitHub for the run's details (`return_run_details`), and
follows the run id GitHub answers with; when the answer has none (204), the run is found by the
request id the workflow puts in its `run-name`. A dispatch that timed out or got a 5xx may
still have been accepted; only a run that appears proves it, and none appearing is a failure a
person resolves (re-dispatching could revert twice). Following the run is bounded by
OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS; a run that never finishes fails the step with its link.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.clients.github import DispatchedRun, GitHub, WorkflowRun
from bot.clients.github_errors import GitHubError, github_message
from bot.rollback.plan import short
from bot.rollback.reason import workflow_reason
from bot.rollback.steps import StepFailed
from bot.text import safe

log = logging.getLogger("opsbot.rollback")

Progress = Callable[[str, WorkflowRun | None], None]  # (detail, run) as the run is found and moves on
Wait = Callable[[float], bool]  # sleeps; True when the bot is stopping


@dataclass(frozen=True)
class Revert:
    github: GitHub
    workflow: str
    ref: str
    timeout_s: float
    poll_s: float
    wait: Wait
    progress: Progress

    def run(self, *, target: str, reason: str, request_id: str) -> WorkflowRun:
        """Dispatch, find and follow the run; returns the successful run, or raises StepFailed."""
        started = datetime.now(UTC)
        deadline = time.monotonic() + self.timeout_s
        unsure, dispatched = self._dispatch(target, reason, request_id)
        self.progress(f"`{safe(self.workflow, 80)}` dispatched for `{short(target)}`; waiting for its run", None)
        if dispatched is not None:
            run = self._first_look(dispatched, deadline)
        else:
            run = self._find(request_id, started, deadline, unsure)
        return self._follow(run, deadline)

    def _dispatch(self, target: str, reason: str, request_id: str) -> tuple[GitHubError | None, DispatchedRun | None]:
        inputs = {"target_sha": target, "reason": workflow_reason(reason), "request_id": request_id}
        try:
            return None, self.github.dispatch_workflow(self.workflow, ref=self.ref, inputs=inputs)
        except GitHubError as exc:
            if not exc.retryable:
                raise StepFailed(
                    f"GitHub refused the revert dispatch. {github_message(exc)}",
                    "Nothing was reverted. Fix what GitHub named, then request `/rollback` again.",
                ) from exc
            log.warning("rollback dispatch unconfirmed (%s); looking for its run", exc.detail)
            return exc, None  # it may have been accepted: only a run appearing tells

    def _first_look(self, dispatched: DispatchedRun, deadline: float) -> WorkflowRun:
        """The run GitHub named in the dispatch's answer; transient failures are retried until the deadline."""
        while True:
            try:
                run = self.github.workflow_run(dispatched.id)
            except GitHubError as exc:
                self._unless_transient(exc, None)
                if self._out_of_time(deadline):
                    raise StepFailed(
                        f"GitHub did not show the dispatched run <{safe(dispatched.html_url, 300)}|"
                        f"#{dispatched.id}> within {self.timeout_s:g} s ({github_message(exc)})",
                        f"Watch <{safe(dispatched.html_url, 300)}|the run> in GitHub Actions and check "
                        "`GET /api/health` before requesting `/rollback` again.",
                    ) from exc
                continue
            self.progress(self._describe(run), run)
            return run

    def _find(self, request_id: str, started: datetime, deadline: float, unsure: GitHubError | None) -> WorkflowRun:
        problem = ""
        while True:
            try:
                run = self.github.find_run(self.workflow, marker=request_id, created_after=started)
            except GitHubError as exc:
                self._unless_transient(exc, None)
                problem = f" (last answer: {github_message(exc)})"
            else:
                if run is not None:
                    self.progress(self._describe(run), run)
                    return run
            if self._out_of_time(deadline):
                break
        if unsure is not None:
            failure = (
                f"the dispatch was not confirmed ({github_message(unsure)}) and no run with request id "
                f"`{request_id}` appeared within {self.timeout_s:g} s{problem}"
            )
            next_action = (
                f"Look in GitHub Actions for a `{safe(self.workflow, 80)}` run titled with `{request_id}` "
                "before requesting `/rollback` again, so the revert cannot run twice."
            )
        else:
            failure = (
                f"no `{safe(self.workflow, 80)}` run carrying request id `{request_id}` appeared within "
                f"{self.timeout_s:g} s of the dispatch{problem}"
            )
            next_action = (
                "Check GitHub Actions: the workflow must put `inputs.request_id` in its `run-name`. "
                "Then request `/rollback` again."
            )
        raise StepFailed(failure, next_action)

    def _follow(self, run: WorkflowRun, deadline: float) -> WorkflowRun:
        last = run
        while last.status != "completed":
            if self._out_of_time(deadline):
                raise StepFailed(
                    f"the revert run did not finish within {self.timeout_s:g} s "
                    f"(last status `{safe(last.status, 20)}`): {_link(last)}",
                    f"The run may still be going: watch {_link(last)}, let it finish or cancel it, and check "
                    "`GET /api/health` before requesting `/rollback` again. Nothing is retried automatically.",
                )
            try:
                seen = self.github.workflow_run(last.id)
            except GitHubError as exc:
                self._unless_transient(exc, last)
                continue
            if seen.status != last.status:
                self.progress(self._describe(seen), seen)
            last = seen
        if last.conclusion != "success":
            raise StepFailed(
                f"the revert run concluded `{safe(last.conclusion or 'unknown', 20)}`: {_link(last)}",
                f"Read the run's log at {_link(last)} and fix the cause; the deployment may be partly reverted, so "
                "check `GET /api/health` (or `/gate`) before requesting `/rollback` again.",
            )
        return last

    def _unless_transient(self, exc: GitHubError, run: WorkflowRun | None) -> None:
        """Rate limits, 5xx and timeouts while following: keep following; anything else stops the step."""
        if exc.retryable:
            log.warning("rollback: GitHub unavailable while following the run (%s)", exc.detail)
            return
        where = f" The revert may still be running: {_link(run)}." if run else ""
        raise StepFailed(
            f"GitHub refused while the bot followed the revert. {github_message(exc)}{where}",
            "Fix what GitHub named, check the run in GitHub Actions, then decide whether to request `/rollback` again.",
        ) from exc

    def _out_of_time(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        if self.wait(min(self.poll_s, left)):
            raise StepFailed(
                "the bot was stopped while it followed the revert run",
                "Check the run in GitHub Actions and `GET /api/health`, then request `/rollback` again "
                "if the deployment is not reverted.",
            )
        return False

    @staticmethod
    def _describe(run: WorkflowRun) -> str:
        return f"run {_link(run)} is `{safe(run.status, 20)}`"


def _link(run: WorkflowRun | None) -> str:
    if run is None:
        return "(no run)"
    return f"<{safe(run.html_url, 300)}|#{run.id}>"
