"""What an approvable action is, to the shared approval machinery: how to show it, how to run it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Outcome:
    """The result of running an approved action, as the operator and the audit log see it."""

    applied: bool
    summary: str  # mrkdwn, already escaped
    audit_outcome: str  # "applied", "not_applied" (it surely did not), "unconfirmed" (may have) or "failed"
    retryable: bool = False
    detail: str = ""
    uncertain: bool = False  # failed, yet it may have taken effect (a timed-out or 5xx write, a lost read-back)


@dataclass(frozen=True)
class ExecutionContext:
    approval_id: str
    params: Mapping[str, Any]
    requester: str
    approver: str
    request_id: str


class ActionSpec(Protocol):
    @property
    def name(self) -> str:
        """The action's key in the policy table, e.g. 'halt'."""

    def title(self, params: Mapping[str, Any]) -> str:
        """Plain-text headline, e.g. 'Halt trading: global'."""

    def effect(self, params: Mapping[str, Any]) -> str:
        """mrkdwn sentence saying exactly what will happen when approved."""

    def execute(self, ctx: ExecutionContext) -> Outcome:
        """Run the approved action once; must not raise for expected faults."""
