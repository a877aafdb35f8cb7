"""The rollback's Slack messages: the one progress message, and posts to the channels.

Slack failing never stops a rollback: the store is the truth and `/rollback status` shows it, so
every failure here (an API error or Slack unreachable) is logged and reported as False/None.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render import as_dicts, notice_blocks
from bot.text import clip

log = logging.getLogger("opsbot.rollback")


class Messages:
    def __init__(self, slack: WebClient, rollback_id: str) -> None:
        self._slack, self._id = slack, rollback_id

    def post_progress(self, channel: str, text: str) -> str | None:
        """Post the progress message; its ts, or None when Slack did not take it."""
        try:
            posted = self._slack.chat_postMessage(channel=channel, text=clip(text, 3000),
                                                  blocks=as_dicts(notice_blocks(text)))
        except (SlackApiError, OSError) as exc:
            log.warning("rollback %s: progress message not posted: %s", self._id, _error(exc))
            return None
        return str(posted["ts"])

    def update_progress(self, channel: str, ts: str, text: str) -> None:
        try:
            self._slack.chat_update(channel=channel, ts=ts, text=clip(text, 3000), blocks=as_dicts(notice_blocks(text)))
        except (SlackApiError, OSError) as exc:
            log.warning("rollback %s: progress not updated: %s", self._id, _error(exc))

    def post(self, channel: str, text: str) -> bool:
        try:
            self._slack.chat_postMessage(channel=channel, text=text)
        except (SlackApiError, OSError) as exc:  # OSError: Slack unreachable
            log.warning("rollback %s: message to %s not posted: %s", self._id, channel, _error(exc))
            return False
        return True


def _error(exc: Exception) -> str:
    return str(exc.response.get("error")) if isinstance(exc, SlackApiError) else type(exc).__name__
