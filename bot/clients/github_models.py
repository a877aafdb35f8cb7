"""GitHub's REST answers as pydantic models, reading only the fields the bot uses.

A wrong type or a missing required field raises pydantic's ValidationError; the client reports it as an
unexpected answer. GitHub's timestamps are read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, RootModel, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from bot.clients.answers import Answer


def utc(at: datetime) -> datetime:
    """Naive datetimes are taken as UTC, as GitHub's timestamps are."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso_text(value: object) -> object:
    # GitHub writes times as ISO 8601 text; a number here is not GitHub's shape, however it might convert.
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be an ISO 8601 time as a string")
    return value


def _empty_if_null(value: object) -> object:
    return "" if value is None else value


Time = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(utc)]
Title = Annotated[StrictStr, BeforeValidator(_empty_if_null)]  # GitHub sends null for an unnamed run
Url = Annotated[StrictStr | None, AfterValidator(lambda url: url or None)]


class CheckRun(Answer):
    model_config = ConfigDict(title="check run")

    name: StrictStr
    status: StrictStr  # queued | in_progress | completed (and GitHub's waiting/requested/pending)
    conclusion: StrictStr | None = None  # success | failure | neutral | cancelled | skipped | timed_out | …
    html_url: StrictStr | None = None
    completed_at: Time | None = None


class CheckRunsPage(Answer):
    """`GET …/commits/{sha}/check-runs`, one page."""

    model_config = ConfigDict(title="check runs")

    check_runs: list[CheckRun]


class Deployment(Answer):
    id: StrictInt
    sha: StrictStr
    ref: StrictStr
    environment: StrictStr = ""
    created_at: Time


class Deployments(RootModel[list[Deployment]]):
    """`GET …/deployments`, one page."""

    model_config = ConfigDict(title="deployments")


class DeploymentStatus(Answer):
    state: StrictStr  # error | failure | inactive | in_progress | queued | pending | success
    created_at: Time
    target_url: Url = None


class DeploymentStatuses(RootModel[list[DeploymentStatus]]):
    """`GET …/deployments/{id}/statuses`, one page."""

    model_config = ConfigDict(title="deployment statuses")


class WorkflowRun(Answer):
    """`GET …/actions/runs/{id}`, and each run of a workflow's list."""

    model_config = ConfigDict(title="workflow run")

    id: StrictInt
    name: Title = ""
    display_title: Title = ""  # the workflow's `run-name`; the rollback workflow puts the request id in it
    status: StrictStr  # queued | in_progress | completed (and waiting/requested/pending)
    conclusion: StrictStr | None = None
    html_url: StrictStr
    created_at: Time
    head_sha: StrictStr


class WorkflowRunsPage(Answer):
    """`GET …/actions/workflows/{workflow}/runs`, one page."""

    model_config = ConfigDict(title="workflow runs")

    workflow_runs: list[WorkflowRun]


class DispatchedRun(Answer):
    """The run a dispatch started, from the dispatch's own answer (`return_run_details`)."""

    model_config = ConfigDict(title="dispatch")

    id: StrictInt = Field(alias="workflow_run_id")
    api_url: StrictStr = Field(alias="run_url")
    html_url: StrictStr
