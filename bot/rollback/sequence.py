"""One rollback's sequence (see bot.rollback.runner): the five steps, each step's state saved and
shown as it changes, and the endings (failed, with the freeze kept; or completed and closed)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.clients.backend_errors import BackendError
from bot.clients.github import WorkflowRun
from bot.errors import OpsbotError
from bot.rollback import evidence as rollback_evidence
from bot.rollback.messages import Messages
from bot.rollback.models import Rollback
from bot.rollback.parts import RunnerConfig, RunnerParts
from bot.rollback.plan import restore_problem, short
from bot.rollback.revert import Revert, Wait
from bot.rollback.steps import (
    EVIDENCE,
    HALT,
    RESTORE,
    REVERT,
    STOP,
    StepFailed,
    StepState,
    not_run,
    progress_text,
    state_of,
    with_step,
)
from bot.rollback.store import freeze_owner
from bot.text import clip, safe

log = logging.getLogger("opsbot.rollback")
EVIDENCE_FALLBACK = timedelta(hours=24)  # how far back the bundle reaches when the release start is unknown


class RollbackRun:
    """One rollback's sequence; its state lives in `row` (and in the store)."""

    def __init__(
        self, parts: RunnerParts, config: RunnerConfig, row: Rollback, *, wait: Wait, trigger_name: Callable[[str], str]
    ) -> None:
        self.parts, self.config, self.row = parts, config, row
        self.wait, self.trigger_name = wait, trigger_name
        self.messages = Messages(parts.outbox, row.id, row.approval_id)
        self.checks: list[str] = []  # the trade-halt authority checks so far, shown in step 4

    def run(self) -> None:
        sequence = (
            (STOP, self.stop_rollout),
            (REVERT, self.revert),
            (RESTORE, self.restore),
            (HALT, self.confirm_halt),
            (EVIDENCE, self.preserve),
        )
        step = STOP
        try:
            for step, action in sequence:
                if step != HALT:
                    self.check_halt(before=step)
                self.mark(step, StepState.RUNNING, None)
                self.mark(step, StepState.DONE, action())
            self.close()
        except StepFailed as failed:
            self.preserve_anyway(failed.step or step)
            self.fail_safely(failed.step or step, failed)
        except Exception as exc:  # an unexpected fault stops the sequence like any failure
            log.exception("rollback %s: unexpected failure in %s", self.row.id, step)
            self.preserve_anyway(step)
            self.fail_safely(
                step,
                StepFailed(
                    f"unexpected error in the bot ({type(exc).__name__})",
                    "Read the bot's log for this rollback id, check `GET /api/health` "
                    "and the workflow run, then decide whether to request `/rollback` "
                    "again.",
                ),
            )

    def fail_safely(self, step: str, failed: StepFailed) -> None:
        try:
            self.fail(step, failed)
        except Exception:  # e.g. the store is down: the row stays running and is reaped as interrupted later
            log.exception("rollback %s: the failure at %s could not be recorded", self.row.id, step)

    # The steps.

    def stop_rollout(self) -> str:
        row, now = self.row, self.parts.clock()
        try:
            self.parts.freeze.freeze(
                owner=freeze_owner(row.id), reason=clip(f"rollback {row.id}: {row.reason}", 450), now=now
            )
        except OpsbotError as exc:
            raise StepFailed(
                f"the cutover freeze could not be recorded. {exc.operator_text()}",
                "Nothing was reverted. Request `/rollback` again once the bot's store is back.",
            ) from exc
        channel = self.config.announce_channel or row.channel
        posted = self.post(
            channel,
            f":ice_cube: *Rollout stopped:* rollback `{row.id}` "
            f"(`{safe(row.deployed, 40)}` → `{short(row.target)}`) is in progress. The "
            "cutover is frozen and no further users are moved until the rollback is closed. "
            "`/halt` stays available.",
        )
        said = f"announced in <#{channel}>" if posted else ":warning: the announcement could not be posted"
        return f"cutover frozen (`/cutover advance` refused until the rollback is closed); {said}"

    def revert(self) -> str:
        row = self.row
        if not self.config.workflow:
            raise StepFailed(
                "OPSBOT_ROLLBACK_WORKFLOW is not set",
                "Nothing was reverted. Configure the workflow, then request `/rollback` again.",
            )
        revert = Revert(
            self.parts.github,
            self.config.workflow,
            self.config.ref,
            self.config.run_timeout_s,
            self.config.poll_s,
            self.wait,
            self.on_run,
        )
        self.parts.store.record(
            row, "rollback.dispatch", "accepted", {"workflow": self.config.workflow, "target_sha": row.target}
        )
        run = revert.run(target=row.target, reason=row.reason, request_id=row.run_request_id)
        return f"run <{safe(run.html_url, 300)}|#{run.id}> succeeded"

    def restore(self) -> str:
        row, problem = self.row, "no answer yet"
        deadline = time.monotonic() + self.config.version_timeout_s
        while True:
            try:
                health = self.parts.backend.health(request_id=row.run_request_id).data
            except BackendError as exc:
                problem = exc.operator_text()
            else:
                found = restore_problem(health.version, health.surfaces, row.target)
                if found is None:
                    shown = ", ".join(f"{safe(k, 20)} `{safe(v, 40)}`" for k, v in sorted(health.surfaces.items()))
                    version, status = safe(health.version, 40), safe(health.status, 20)
                    return f"`GET /api/health` reports `{version}` ({shown}; {status})"
                problem = found
            left = deadline - time.monotonic()
            if left <= 0 or self.wait(min(self.config.poll_s, left)):
                break
        raise StepFailed(
            f"traffic is not confirmed on the target after {self.config.version_timeout_s:g} s: {problem}",
            "The revert run succeeded but the backend does not report the target: check the deploy "
            "it made and `GET /api/health`, then decide whether to request `/rollback` again.",
        )

    def confirm_halt(self) -> str:
        return self.check_halt(before=None)

    def preserve(self) -> str:
        row, now = self.row, self.parts.clock()
        since = row.release_started_at or (row.created_at - EVIDENCE_FALLBACK)
        try:
            bundle = rollback_evidence.build(
                row,
                directory=self.config.incident_dir,
                audit=self.parts.audit,
                engine=self.parts.engine,
                cosmos=self.parts.cosmos,
                since=since,
                generated_at=now,
            )
        except OpsbotError as exc:
            raise StepFailed(
                f"the incident bundle could not be stored. {exc.operator_text()}",
                "Export the evidence by hand once the store is back: "
                f"`opsbot audit export --since {since.isoformat()}`.",
            ) from exc
        self.save(bundle_path=str(bundle.path) if bundle.path else None, bundle_sha256=bundle.sha256)
        self.parts.store.record(
            row,
            "rollback.evidence_preserved",
            "applied",
            {
                "path": str(bundle.path) if bundle.path else None,
                "stored": True,
                "sha256": bundle.sha256,
                "lines": bundle.lines,
                "bytes": bundle.size,
                "audit_rows": bundle.audit_rows,
                "last_seq": bundle.last_seq,
                "gate_rows": bundle.gate_rows,
                "copy_problem": bundle.copy_problem,
            },
        )
        copy = f"; :warning: {safe(bundle.copy_problem, 300)}" if bundle.copy_problem else ""
        return (
            f"{bundle.lines} lines ({bundle.audit_rows} audit rows, {bundle.gate_rows} gate evaluations) stored "
            f"in the bot's database: `opsbot incident export {row.id}`; its SHA-256 is in the audit log{copy}"
        )

    def preserve_anyway(self, failed_step: str) -> None:
        """A rollback that stopped still preserves its evidence (the runbook's step 5), unless that failed."""
        if failed_step == EVIDENCE:
            return
        try:
            self.mark(EVIDENCE, StepState.RUNNING, None)
            self.mark(EVIDENCE, StepState.DONE, self.preserve())
        except Exception as exc:  # the failure being recorded matters more; say why the evidence is missing
            log.exception("rollback %s: evidence not preserved after the failure at %s", self.row.id, failed_step)
            with contextlib.suppress(Exception):
                detail = exc.failure if isinstance(exc, StepFailed) else type(exc).__name__
                self.mark(EVIDENCE, StepState.FAILED, safe(detail, 300))

    def check_halt(self, *, before: str | None) -> str:
        """Trade-halt authority: the control API answers and /halt can be approved. Raises StepFailed."""
        label = f"before {before}" if before else "after the restore"
        problem = self.parts.halt_ready()
        state = ""
        try:
            control = self.parts.backend.trading_control(request_id=self.row.run_request_id).data
            state = f"global {'HALTED' if control.global_.halted else 'trading'}, revision {control.revision}"
        except BackendError as exc:
            problem = problem or f"`GET /api/trading-control` failed: {exc.operator_text()}"
        self.checks.append(f"{label} {':x:' if problem else ':heavy_check_mark:'}")
        detail = f"checked {', '.join(self.checks)}" + (f" ({state})" if state else "")
        if problem:
            self.mark(HALT, StepState.FAILED, detail)
            raise StepFailed(
                f"trade-halt authority could not be confirmed {label}: {problem}",
                "A halt must stay possible during a rollback: restore `GET /api/trading-control` (or "
                "the halt authorities), halt through the backend directly if trading must stop, then "
                "request `/rollback` again.",
                step=HALT,
            )
        if before is not None:  # the step stays done once step 4 itself passed; later checks add to it
            self.mark(HALT, state_of(self.row.steps, HALT) or StepState.RUNNING, detail, audit=False)
        return detail

    # Progress and endings.

    def on_run(self, detail: str, run: WorkflowRun | None) -> None:
        values: dict[str, Any] = {} if run is None else {"run_id": run.id, "run_url": run.html_url}
        self.mark(REVERT, StepState.RUNNING, detail, **values)

    def mark(self, step: str, state: StepState, detail: str | None, *, audit: bool = True, **values: Any) -> None:
        if state is StepState.PENDING:
            state = StepState.RUNNING
        steps = with_step(self.row.steps, step, state, detail, self.parts.clock())
        self.save(steps=steps, **values)
        if audit and state in (StepState.DONE, StepState.FAILED):
            self.parts.store.record(
                self.row,
                f"rollback.step.{step}",
                "applied" if state is StepState.DONE else "failed",
                {"step": step},
                detail or "",
            )
        self.update_progress()

    def save(self, **values: object) -> None:
        now = self.parts.clock()
        if not self.parts.store.save(self.row.id, now=now, **values):
            raise StepFailed(
                "this rollback is no longer running in the store (marked interrupted)", "See `/rollback status`."
            )
        _set(self.row, updated_at=now, **values)

    def fail(self, step: str, failed: StepFailed) -> None:
        now = self.parts.clock()
        steps = not_run(with_step(self.row.steps, step, StepState.FAILED, None, now), now)
        if not self.parts.store.fail(
            self.row, step=step, failure=failed.failure, next_action=failed.next_action, steps=steps, now=now
        ):
            log.warning("rollback %s: already finished elsewhere; failure not recorded", self.row.id)
            return
        _set(
            self.row,
            status="failed",
            active=None,
            failed_step=step,
            failure=failed.failure,
            next_action=failed.next_action,
            steps=steps,
            finished_at=now,
        )
        self.update_progress()
        alert = (
            f":rotating_light: *Rollback `{self.row.id}` stopped at {step}:* {failed.failure}\n"
            f":point_right: *Next:* {failed.next_action}\nThe cutover stays frozen; `/halt` stays available."
        )
        self.announce(alert)

    def close(self) -> None:
        now = self.parts.clock()
        closed = self.parts.store.complete(self.row, steps=self.row.steps, now=now)
        if not closed:
            log.warning("rollback %s: no longer running; not closed", self.row.id)
            return
        _set(self.row, status="completed", active=None, finished_at=now, closed_at=now, closed_by=self.row.id)
        for rollback_id in closed:
            self.parts.freeze.lift(owner=freeze_owner(rollback_id), by="opsbot", now=now)
        self.update_progress()
        self.announce(
            f":white_check_mark: *Rollback `{self.row.id}` completed:* production runs "
            f"`{short(self.row.target)}`. The rollback is closed and the cutover freeze is lifted."
        )

    def announce(self, text: str) -> None:
        """The outcome: in the approval card's thread (and the channel), naming who asked and approved;
        and in the announcement channel when that is another one."""
        row = self.row
        self.messages.outcome(row.channel, f"{text}\nRequested by <@{row.requester}>, approved by <@{row.approver}>.")
        if self.config.announce_channel and self.config.announce_channel != row.channel:
            self.post(self.config.announce_channel, text)

    def post_progress(self) -> None:
        self.messages.post_progress(self.row.channel, self.progress())

    def update_progress(self) -> None:
        self.messages.update_progress(self.row.channel, self.progress())

    def progress(self) -> str:
        return progress_text(self.row, self.trigger_name(self.row.trigger))

    def post(self, channel: str, text: str) -> bool:
        return self.messages.post(channel, text)


def _set(row: Rollback, **values: object) -> None:
    """Keep the run's detached copy of the row in step with what was stored."""
    for key, value in values.items():
        setattr(row, key, value)
