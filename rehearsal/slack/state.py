"""The workspace behind the local Slack peer: messages, ephemerals, home tabs, users, channels.

Kept apart from the HTTP layer so the rules Slack applies (ts allocation, what chat.update keeps,
what a response_url post does to the message it belongs to) live in one readable place.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rehearsal.slack.calls import Json, SlackError
from rehearsal.slack.channels import Channels

__all__ = ["Json", "SlackError", "Workspace"]

# Slack lets a response_url be used five times within thirty minutes.
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60

_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_CONTENT_KEYS = ("text", "blocks", "attachments")


@dataclass
class _ResponseUrl:
    channel: str | None
    user: str | None
    message_ts: str | None
    created: float
    uses: int = 0


def _flag(value: Any) -> bool:
    # Slack documents booleans; form posts and hand-written JSON send "true".
    return value is True or value in ("true", "1")


def _has_content(args: Json) -> bool:
    """Whether a message has something to show; refuses malformed structure like Slack does."""
    for key, error in (("blocks", "invalid_blocks_format"), ("attachments", "invalid_attachments")):
        if args.get(key) and not isinstance(args[key], list):
            raise SlackError(error)
    return any(args.get(key) for key in _CONTENT_KEYS)


def _require(args: Json, key: str, error: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise SlackError(error)
    return value


class Workspace:
    """Thread-safe state of one workspace with one bot; every public method takes the lock."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str = "B0LOCAL00",
        app_id: str = "A0LOCAL00",
        team_domain: str = "local",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team_id, self.team_domain = team_id, team_domain
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self._clock = clock
        self._lock = threading.RLock()
        self._last_us = 0
        self._messages: dict[str, list[Json]] = {}
        self._ephemerals: list[Json] = []
        self._home_views: dict[str, Json] = {}
        self._users: dict[str, Json] = {}
        self.channels = Channels(clock)
        self.scopes: frozenset[str] = frozenset()  # the bot token's, set by the peer from the manifest
        self._response_urls: dict[str, _ResponseUrl] = {}
        self.add_user(bot_user_id, name="opsbot", is_bot=True)

    # -- seeding and reading ------------------------------------------------------------------

    def add_user(self, user_id: str, *, name: str | None = None, is_bot: bool = False) -> Json:
        name = name or user_id.lower()
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name,
            "deleted": False,
            "is_bot": is_bot,
            "is_admin": False,
            "tz": "Etc/UTC",
            "profile": {"display_name": name, "real_name": name, "team": self.team_id},
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> Json:
        return self.channels.add(
            channel_id, name=name, is_private=is_private, is_member=is_member, is_archived=is_archived
        )

    def user(self, user_id: str) -> Json:
        """users.info's `user`; any well-formed ID is a member, generated on first sight."""
        with self._lock:
            if user_id not in self._users:
                if not _USER_ID.match(user_id):
                    raise SlackError("user_not_found")
                self.add_user(user_id)
            return copy.deepcopy(self._users[user_id])

    def channel(self, channel_id: str) -> Json:
        """conversations.info's `channel`; only channels added to the workspace exist."""
        return self.channels.get(channel_id)

    def messages(self) -> dict[str, list[Json]]:
        with self._lock:
            return copy.deepcopy(self._messages)

    def channel_messages(self, channel: str) -> list[Json]:
        with self._lock:
            return copy.deepcopy(self._messages.get(channel, []))

    def ephemerals(self, user: str | None = None) -> list[Json]:
        """Ephemeral messages; here `user` is the recipient, the only person who sees one."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._ephemerals if user is None or m["user"] == user]

    def find_message(self, channel: str, ts: str) -> Json | None:
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found is not None else None

    def home_view(self, user: str) -> Json | None:
        with self._lock:
            return copy.deepcopy(self._home_views.get(user))

    def snapshot(self) -> Json:
        """Channel messages and ephemerals as JSON, so a rehearsal can restart where it stopped."""
        with self._lock:
            return {
                "messages": copy.deepcopy(self._messages),
                "ephemerals": copy.deepcopy(self._ephemerals),
                "last_us": self._last_us,
            }

    def restore(self, snapshot: Json) -> None:
        """Put back what `snapshot()` returned; the ts keep their values, so approvals still find them."""
        with self._lock:
            self._messages = copy.deepcopy(dict(snapshot.get("messages") or {}))
            self._ephemerals = copy.deepcopy(list(snapshot.get("ephemerals") or []))
            self._last_us = max(self._last_us, int(snapshot.get("last_us") or 0))

    def new_response_url(self, channel: str | None, user: str | None, message_ts: str | None) -> str:
        url_id = secrets.token_urlsafe(12)
        with self._lock:
            self._response_urls[url_id] = _ResponseUrl(channel, user, message_ts, self._clock())
        return url_id

    # -- Web API methods: take the call's args, return the answer's fields besides "ok" --------

    def auth_test(self, args: Json) -> Json:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Local Workspace",
            "user": "opsbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def post_message(self, args: Json) -> Json:
        channel = _require(args, "channel", "channel_not_found")
        self.channels.can_post(channel, self.scopes)
        if not _has_content(args):
            raise SlackError("no_text")
        with self._lock:
            message = self._bot_message(channel, args)
            self._messages.setdefault(channel, []).append(message)
            return {"channel": channel, "ts": message["ts"], "message": _public(message)}

    def update(self, args: Json) -> Json:
        channel = _require(args, "channel", "channel_not_found")
        ts = _require(args, "ts", "message_not_found")
        # Any content field counts, even an empty one: it is how a caller removes blocks.
        if not _has_content(args) and not any(key in args for key in _CONTENT_KEYS):
            raise SlackError("no_text")
        with self._lock:
            message = next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)
            if message is None:
                raise SlackError("message_not_found")
            _replace_content(message, args)
            message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {"channel": channel, "ts": ts, "text": message["text"], "message": _public(message)}

    def post_ephemeral(self, args: Json) -> Json:
        channel = _require(args, "channel", "channel_not_found")
        self.channels.can_post(channel, self.scopes)
        user = _require(args, "user", "user_not_found")
        if not _has_content(args):
            raise SlackError("no_text")
        with self._lock:
            message = self._bot_message(channel, args)
            message.update(user=user, subtype="ephemeral", source="chat.postEphemeral")
            self._ephemerals.append(message)
            return {"message_ts": message["ts"]}

    def get_permalink(self, args: Json) -> Json:
        channel = _require(args, "channel", "channel_not_found")
        ts = _require(args, "message_ts", "message_not_found")
        if self.find_message(channel, ts) is None:
            raise SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}

    def publish_view(self, args: Json) -> Json:
        user = _require(args, "user_id", "invalid_arguments")
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments")
        with self._lock:  # a hash is the caller's claim to know the current view: a stale one is refused
            current = self._home_views.get(user)
            if args.get("hash") and (current is None or args["hash"] != current["hash"]):
                raise SlackError("hash_conflict")
        published = {
            **view,
            "id": "V" + secrets.token_hex(5).upper(),
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "hash": secrets.token_hex(8),
        }
        with self._lock:
            self._home_views[user] = published
        return {"view": copy.deepcopy(published)}

    def share_files(self, channel: str, files: list[Json], *, text: str = "", thread_ts: str | None = None) -> Json:
        """The message files.completeUploadExternal posts when it shares files in a channel."""
        with self._lock:
            message = self._bot_message(channel, {"text": text, "thread_ts": thread_ts})
            message.update(files=copy.deepcopy(files), upload=True)
            self._messages.setdefault(channel, []).append(message)
            return copy.deepcopy(message)

    def users_info(self, args: Json) -> Json:
        return {"user": self.user(_require(args, "user", "user_not_found"))}

    def conversations_info(self, args: Json) -> Json:
        return {"channel": self.channel(_require(args, "channel", "channel_not_found"))}

    def conversations_join(self, args: Json) -> Json:
        return self.channels.join(_require(args, "channel", "channel_not_found"))

    # -- response_url -------------------------------------------------------------------------

    def respond(self, url_id: str, payload: Json) -> None:
        """Apply a response_url post the way Slack does; raises SlackError with Slack's refusal."""
        with self._lock:
            target = self._live_response_url(url_id)
            deleting = _flag(payload.get("delete_original"))
            try:  # response_url refusals are HTTP 400s, not 200 {"ok": false}
                if not deleting and not _has_content(payload):
                    raise SlackError("no_text")
            except SlackError as e:
                raise SlackError(e.error, 400) from None
            target.uses += 1  # only posts Slack accepts use the URL up
            original = self._find(target.channel, target.message_ts)
            if deleting:
                if original is not None:
                    self._remove(original)
                return
            if _flag(payload.get("replace_original")) and original is not None:
                # Unlike chat.update, the post is the whole new message: omitted blocks are gone.
                _replace_content(original, {"text": "", "blocks": [], "attachments": [], **payload})
            elif payload.get("response_type") == "in_channel" and target.channel:
                message = self._bot_message(target.channel, payload)
                self._messages.setdefault(target.channel, []).append(message)
            elif target.channel and target.user:
                message = self._bot_message(target.channel, payload)
                message.update(user=target.user, subtype="ephemeral", source="response_url")
                self._ephemerals.append(message)

    def _live_response_url(self, url_id: str) -> _ResponseUrl:
        target = self._response_urls.get(url_id)
        if target is None or self._clock() - target.created > RESPONSE_URL_TTL_SECONDS:
            raise SlackError("expired_url", 404)
        if target.uses >= RESPONSE_URL_MAX_USES:
            raise SlackError("used_url", 404)
        return target

    # -- helpers (caller holds the lock) ------------------------------------------------------

    def _next_ts(self) -> str:
        # Integer microseconds: strictly increasing even when two posts share a clock reading.
        self._last_us = max(int(self._clock() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _bot_message(self, channel: str, args: Json) -> Json:
        message: Json = {
            "type": "message",
            "ts": self._next_ts(),
            "channel": channel,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text") or "",
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(key):
                message[key] = copy.deepcopy(args[key])
        if args.get("thread_ts") and _flag(args.get("reply_broadcast")):
            message["subtype"] = "thread_broadcast"  # how Slack marks a reply also sent to the channel
        return message

    def _find(self, channel: str | None, ts: str | None) -> Json | None:
        if channel is None or ts is None:
            return None
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return next((m for m in self._ephemerals if m["channel"] == channel and m["ts"] == ts), None)

    def _remove(self, message: Json) -> None:
        # By identity: two messages may hold equal content.
        for bucket in (self._ephemerals, self._messages.get(message["channel"], [])):
            for index, candidate in enumerate(bucket):
                if candidate is message:
                    del bucket[index]
                    return


def _replace_content(message: Json, args: Json) -> None:
    # Like chat.update: a field left out keeps its old value; an empty list removes it.
    for key in _CONTENT_KEYS:
        if key not in args:
            continue
        if key == "text":
            message["text"] = args["text"] or ""
        elif args[key]:
            message[key] = copy.deepcopy(args[key])
        else:
            message.pop(key, None)


def _public(message: Json) -> Json:
    """The message as Slack returns it in an API answer (no channel key, a copy)."""
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "channel"}
