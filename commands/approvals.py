"""The shared Approve / Reject buttons of every two-person request."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.approvals.machine import Verb
from commands.common import Invocation, after_ack, guarded
from commands.deps import Deps


def _approval_id(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value", ""))[:64]


def register(app: App, deps: Deps) -> None:
    def listener(verb: Verb) -> Any:
        def click(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            inv = Invocation.from_action(body)
            approval_id = _approval_id(body)
            after_ack(
                deps,
                lambda: guarded(
                    deps,
                    inv,
                    respond,
                    "approval",
                    lambda: deps.flow.decide_click(
                        approval_id=approval_id, verb=verb, actor=inv.actor, request_id=inv.request_id
                    ),
                ),
                critical=True,
            )

        return click

    app.action("approve")(listener(Verb.APPROVE))
    app.action("reject")(listener(Verb.REJECT))
