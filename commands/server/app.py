"""The app factory: deps from settings, and a Bolt app with every listener group registered.

Nothing here runs at import time; the entry point (bot.cli) and the tests call these functions.
"""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult

from commands.deps import Deps

log = logging.getLogger("opsbot.app")


def build_app(deps: Deps) -> App:
    from commands import (  # the listener groups; imported here to keep import time inert
        approvals,
        cutover,
        gate,
        halt,
        home,
        monitoring,
        rollback,
    )

    settings = deps.settings
    if settings.slack_signing_secret is None:
        raise ValueError("SLACK_SIGNING_SECRET is required: request signatures are always verified")
    app = App(
        client=deps.slack,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Who the bot is comes from its settings, never from Slack: a restart while Slack (auth.test)
        # is down still takes commands.
        authorize=lambda team_id, enterprise_id: identity(deps, team_id, enterprise_id),
        # Ack from the request's own thread (no 10 ms ack polling); the work after the ack is queued on
        # deps.workers by commands.common.after_ack.
        process_before_response=True,
        listener_executor=deps.workers,
        # No auth.test call while building the app: start-up must not depend on reaching Slack.
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    app.error(_on_error)
    halt.register(app, deps)
    approvals.register(app, deps)
    gate.register(app, deps)
    cutover.register(app, deps)
    rollback.register(app, deps)
    monitoring.register(app, deps)  # after rollback: its button starts the /rollback request flow
    home.register(app, deps)
    return app


def identity(deps: Deps, team_id: str | None, enterprise_id: str | None) -> AuthorizeResult:
    """The installation, from settings: one workspace, one bot token (no auth.test on the request path)."""
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token=deps.slack.token or "",
        bot_user_id=deps.settings.slack_bot_user_id or None,
    )


def _on_error(error: Exception) -> BoltResponse:
    log.error("unhandled error in a listener: %s", type(error).__name__, exc_info=error)
    return BoltResponse(status=200, body=":x: Something went wrong; nothing was done.")
