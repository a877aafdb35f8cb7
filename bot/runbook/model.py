"""The runbook as typed data: stages, checks, triggers, actions and signals (pydantic models; structure
and types are checked here, the rest by bot.runbook.load)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# The probes the gate knows how to run. The composite ones evaluate other runbook sections
# (go/no-go, smoke, monitoring) rather than a system.
COMPOSITE_PROBES = frozenset({"go-gate", "smoke-checklist", "monitoring-clean"})
KNOWN_PROBES = COMPOSITE_PROBES | {
    "github-check",
    "platform-auth",
    "cosmos-control-plane",
    "cosmos-execution-data",
    "backend-rejects-unauthorized",
    "control-contract",
    "auth-source-ambiguous",
    "audit-complete",
    "rollback-clarity",
}
# Probes that cannot run without a parameter, and which one.
REQUIRED_PARAMS = {"github-check": "check"}
# What the bot measures itself (source: bot): drift between backend and Cosmos, halt/resume read-backs
# that show the change not applied, and its own approved actions that failed (bot.monitoring.measures).
BOT_MEASURES = frozenset({"control-drift", "kill-switch-misfires", "operator-intervention-failures"})
# The `/rollback --trigger` values of the command grammar: operators type these, so they are fixed.
TRIGGER_IDS = ("auth", "tenant", "controls", "config", "recovery")

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class RunbookError(Exception):
    """The runbook file is missing, not YAML, or not a valid runbook; the message says where."""


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt `probe:` must not silently become an attested item.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckItem(_Model):
    id: Id
    text: Text
    kind: Literal["automatic", "attested"]
    probe: str | None = None
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    attestation: Text | None = None  # automatic items: what a person must ALSO attest (`/gate attest <id>`)


class Entry(_Model):
    """What entering a stage needs, checked when the advance is requested and again when it is approved.

    The first three hold for every stage unless switched off; `soak` is how long the stage being left must
    have been free of hard-trigger alerts; `manual_smoke` needs the manual mobile release smoke attested for
    the deployed version; `backend_deploy_since` is the stability rule: a new backend version deployed (not
    a rollback) since that earlier stage began, with the contract checks still passing after it."""

    go: bool = True  # a GO from /gate for the deployed version, fresh and not followed by a NO-GO
    stage_checks: bool = True  # every check of the stage being left passed or attested
    no_hard_trigger_alerts: bool = True  # no open monitoring breach that points to a hard rollback trigger
    soak: timedelta = Field(default=timedelta(0), ge=timedelta(0))
    manual_smoke: bool = False
    backend_deploy_since: Id | None = None


class Stage(_Model):
    id: Id
    name: Text
    checks: tuple[CheckItem, ...] = Field(min_length=1)
    entry: Entry = Field(default_factory=Entry)


class Smoke(_Model):
    automated: tuple[CheckItem, ...] = Field(min_length=1)
    manual: tuple[CheckItem, ...] = Field(min_length=1)


class Trigger(_Model):
    id: Id
    name: Text
    text: Text


class Action(_Model):
    id: Id
    text: Text


class Rollback(_Model):
    triggers: tuple[Trigger, ...] = Field(min_length=1)
    actions: tuple[Action, ...] = Field(min_length=1)
    data_rule: Text


class Signal(_Model):
    id: Id
    name: Text
    # `prometheus`: `query` (PromQL; `$window` stands for `window`) read from OPSBOT_PROMETHEUS_URL.
    # `bot`: `measure`, one of BOT_MEASURES, which the bot measures itself.
    source: Literal["prometheus", "bot"] = "prometheus"
    query: str | None = None
    measure: str | None = None
    threshold: float = Field(allow_inf_nan=False)
    comparison: Literal[">", ">=", "<", "<="] = ">"  # breach when `value <comparison> threshold`
    window: timedelta = Field(gt=timedelta(0))
    unit: str = Field(default="", max_length=20)  # shown after values, e.g. "%" or "failures"
    trigger: Id | None = None  # the hard rollback trigger a breach of this signal points to


class Monitoring(_Model):
    immediate: tuple[Signal, ...] = Field(min_length=1)
    first_24h: tuple[Signal, ...] = Field(min_length=1)


class Runbook(_Model):
    version: Literal[1]
    stages: tuple[Stage, ...] = Field(min_length=1)
    go: tuple[CheckItem, ...] = Field(min_length=1)
    no_go: tuple[CheckItem, ...] = Field(min_length=1)
    smoke: Smoke
    rollback: Rollback
    monitoring: Monitoring

    def stage(self, stage_id: str) -> Stage:
        return self.stages[self.stage_index(stage_id)]

    def stage_index(self, stage_id: str) -> int:
        """0-based position in the cutover order; KeyError for an unknown id."""
        for index, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return index
        raise KeyError(stage_id)

    def labelled_items(self) -> Iterator[tuple[str, CheckItem]]:
        """Every check item with the section it lives in, e.g. ("go", item) or ("stages.web-…", item)."""
        for stage in self.stages:
            yield from ((f"stages.{stage.id}", check) for check in stage.checks)
        yield from (("go", item) for item in self.go)
        yield from (("no_go", item) for item in self.no_go)
        yield from (("smoke.automated", item) for item in self.smoke.automated)
        yield from (("smoke.manual", item) for item in self.smoke.manual)

    def find_item(self, item_id: str) -> CheckItem | None:
        return next((item for _, item in self.labelled_items() if item.id == item_id), None)

    def item(self, item_id: str) -> CheckItem:
        """A check item from any section (stage checks, go, no_go, smoke); KeyError if unknown."""
        found = self.find_item(item_id)
        if found is None:
            raise KeyError(item_id)
        return found

    def trigger(self, trigger_id: str) -> Trigger:
        for trigger in self.rollback.triggers:
            if trigger.id == trigger_id:
                return trigger
        raise KeyError(trigger_id)

    def signals(self) -> tuple[Signal, ...]:
        return self.monitoring.immediate + self.monitoring.first_24h
