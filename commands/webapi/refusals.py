"""Which Slack Web API refusals are for good and which pass, and what an operator is told of each.

One table for every caller that talks to Slack (posts, updates, the App Home, chart uploads, a
durable outbox): a permanent refusal is recorded and shown, never retried; a passing one (rate
limits, Slack's own faults) may be tried again later. The texts say what Slack did; each caller
adds what happens next (cancelled, retried, shown later).
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.text import safe


@dataclass(frozen=True)
class SlackRefusal:
    error: str
    permanent: bool
    text: str  # plain text for an operator: what happened and how to fix it

    @property
    def retryable(self) -> bool:
        return not self.permanent


_RETRYABLE = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
        "hash_conflict",
        "upload_failed",
        "http_error",
    }
)

# error -> what to tell an operator; {channel} and {needed} are filled in.
_TEXTS = {
    "channel_not_found": "Slack does not know channel {channel}, or it is private and the bot is not in it: "
    "check the channel setting, or invite the bot with `/invite @opsbot`.",
    "not_in_channel": "The bot is not a member of {channel}: invite it with `/invite @opsbot` there.",
    "is_archived": "Channel {channel} is archived: unarchive it or point the bot at another channel.",
    "method_not_supported_for_channel_type": "The bot cannot join {channel} by itself (it is private): "
    "invite it with `/invite @opsbot` there.",
    "missing_scope": "The Slack app lacks the `{needed}` scope: add it in manifest.yaml, update the app from "
    "the manifest and reinstall it.",
    "invalid_blocks": "Slack refused the message's layout (too many blocks or a block too long); "
    "the bot's message was too big to show.",
    "invalid_blocks_format": "Slack refused the message's layout (malformed blocks).",
    "invalid_arguments": "Slack refused the view (too many blocks or a block too long).",
    "msg_too_long": "Slack refused the message as too long.",
    "hash_conflict": "The App Home changed while the bot was publishing it (`hash_conflict`).",
    "not_authed": "The bot sent no Slack token: check SLACK_BOT_TOKEN.",
    "invalid_auth": "Slack refused the bot's token: check SLACK_BOT_TOKEN.",
    "token_revoked": "The bot's Slack token was revoked: reinstall the app and update SLACK_BOT_TOKEN.",
    "account_inactive": "The bot's Slack token belongs to a deactivated app or user: reinstall the app.",
    "ratelimited": "Slack is rate-limiting the bot (`ratelimited`).",
}


def classify(error: str, *, channel: str | None = None, needed: str | None = None) -> SlackRefusal:
    template = _TEXTS.get(error)
    where = f"<#{safe(channel, 40)}>" if channel else "the channel"
    if template is None:
        template = (
            "Slack refused the call (`{error}`)."
            if error not in _RETRYABLE
            else "Slack had a passing fault (`{error}`)."
        )
    text = template.format(channel=where, needed=safe(needed or "?", 80), error=safe(error, 60))
    return SlackRefusal(error, error not in _RETRYABLE, text)


def refusal_of(exc: SlackApiError | SlackRequestError | OSError, *, channel: str | None = None) -> SlackRefusal:
    """The refusal behind an exception slack_sdk raised; no answer at all (network) is passing."""
    if isinstance(exc, SlackApiError):
        body = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(body.get("error") or f"http_{exc.response.status_code}")
        if exc.response.status_code >= 500:
            return SlackRefusal(error, False, f"Slack answered HTTP {exc.response.status_code}.")
        return classify(error, channel=channel, needed=str(body.get("needed") or "") or None)
    return SlackRefusal("unreachable", False, "Slack could not be reached.")
