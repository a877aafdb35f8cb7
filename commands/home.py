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
from bot.errors import OpsbotError
from commands.common import Invocation, after_ack, first_take_or_unknown, request_scope
from commands.deps import Deps
from commands.errors import operator_message
from commands.home_publish import HomePublisher
from commands.views.home import HOME_APPROVE, HOME_REJECT

log = logging.getLogger("opsbot.home")


def register(app: App, deps: Deps) -> HomePublisher:
    publisher = HomePublisher(deps)

    def opened(ack: Ack, event: dict[str, Any]) -> None:
        ack()
        if event.get("tab", "home") == "home" and event.get("user"):
            after_ack(deps, lambda: publisher.opened(str(event["user"])))

    def listener(verb: Verb) -> Any:
        def clicked(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            inv = Invocation.from_action(body)
            approval_id = str(((body.get("actions") or [{}])[0]).get("value", ""))[:64]

            def work() -> None:
                with request_scope(inv):
                    if first_take_or_unknown(deps, inv):  # a replayed click decides nothing
                        publisher.clicked(inv.actor.user_id, click(deps, inv, approval_id, verb))

            after_ack(deps, work, critical=True)

        clicked.__name__ = f"home_{verb.value}"
        return clicked

    app.event("app_home_opened")(opened)
    app.action(HOME_APPROVE)(listener(Verb.APPROVE))
    app.action(HOME_REJECT)(listener(Verb.REJECT))
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
