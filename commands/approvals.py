"""The shared Approve / Reject buttons of every two-person request."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot import flow
from bot.approvals import Verb
from bot.deps import Deps
from commands.common import Invocation, guarded


def _approval_id(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value", ""))[:64]


def register(app: App, deps: Deps) -> None:
    def ack_click(ack: Ack) -> None:
        ack()

    def make_worker(verb: Verb) -> Any:
        def work_click(body: dict[str, Any], respond: Respond) -> None:
            inv = Invocation.from_action(body)
            approval_id = _approval_id(body)
            guarded(deps, inv, respond, "approval", lambda: flow.decide_click(
                deps, approval_id=approval_id, verb=verb, actor=inv.actor, request_id=inv.request_id))

        work_click.__name__ = f"work_{verb.value}"
        return work_click

    app.action("approve")(ack=ack_click, lazy=[make_worker(Verb.APPROVE)])
    app.action("reject")(ack=ack_click, lazy=[make_worker(Verb.REJECT)])
