"""The App Home: published when a person opens it, with Approve / Reject for what they may approve.

The home's buttons (`home.approve`, `home.reject`, value the opaque approval id) go through the same
approval flow as the request message's; the outcome shows at the top of the re-published home,
since a click in a view has no channel to answer in: a decision's from the approval table, a refused
click's as a notice (commands.home_publish), so the refreshes that follow every action keep it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.approvals.machine import Verb
from bot.errors import OpsbotError, operator_message
from commands.common import Invocation, request_scope
from commands.home_publish import HomePublisher
from commands.server.deps import Deps
from commands.views.home import HOME_APPROVE, HOME_REJECT

log = logging.getLogger("opsbot.home")


def register(app: App, deps: Deps) -> HomePublisher:
    publisher = HomePublisher(deps)

    def ack_event(ack: Ack) -> None:
        ack()

    def work_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            publisher.opened(str(event["user"]))

    def ack_click(ack: Ack) -> None:
        ack()

    def make_worker(verb: Verb) -> Any:
        def work_click(body: dict[str, Any]) -> None:
            inv = Invocation.from_action(body)
            approval_id = str(((body.get("actions") or [{}])[0]).get("value", ""))[:64]
            with request_scope(inv):
                publisher.clicked(inv.actor.user_id, click(deps, inv, approval_id, verb))

        work_click.__name__ = f"work_home_{verb.value}"
        return work_click

    app.event("app_home_opened")(ack=ack_event, lazy=[work_opened])
    app.action(HOME_APPROVE)(ack=ack_click, lazy=[make_worker(Verb.APPROVE)])
    app.action(HOME_REJECT)(ack=ack_click, lazy=[make_worker(Verb.REJECT)])
    return publisher


def click(deps: Deps, inv: Invocation, approval_id: str, verb: Verb) -> str | None:
    """Decide one click from the home; the notice to show at the top of the home afterwards, or None
    when it was decided (the home then shows the decision and where it is now, commands.views.home.decision_line)."""
    try:
        deps.flow.decide_click(approval_id=approval_id, verb=verb, actor=inv.actor, request_id=inv.request_id)
    except OpsbotError as exc:
        return f":no_entry: {operator_message(exc)}"
    except SlackApiError as exc:
        log.warning("Slack refused a call after a home click: %s", exc.response.get("error"))
        return f":warning: Recorded, but Slack refused to update the request message. Request id `{inv.request_id}`."
    return None
