"""The local Slack peer's channels and who is in them, and the refusals Slack derives from that.

A channel exists only once added; the bot is in it or not. Slack's answers, by case:
  unknown channel                                  channel_not_found
  archived channel                                 is_archived
  private channel the bot is not in                channel_not_found (the bot cannot see it)
  public channel the bot is not in, posting        allowed with chat:write.public, else not_in_channel
  public channel the bot is not in, sharing a file not_in_channel (chat:write.public does not cover files)
  conversations.join of a private channel          method_not_supported_for_channel_type
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

from rehearsal.slack.calls import Json, SlackError

WRITE_PUBLIC = "chat:write.public"


class Channels:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._channels: dict[str, Json] = {}

    def add(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> Json:
        name = name or channel_id.lower()
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_archived": is_archived,
            "is_member": is_member,
            "created": int(self._clock()),
            "creator": "U0ADMIN",
            "is_general": False,
            "name_normalized": name,
        }
        with self._lock:
            self._channels[channel_id] = channel
        return copy.deepcopy(channel)

    def set_member(self, channel_id: str, is_member: bool) -> None:
        """The bot is invited to (True) or removed from (False) a channel."""
        with self._lock:
            self._known(channel_id)["is_member"] = is_member

    def get(self, channel_id: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._visible(channel_id))

    def can_post(self, channel_id: str, scopes: frozenset[str]) -> None:
        """Raises Slack's refusal of a post by the bot in `channel_id`."""
        with self._lock:
            channel = self._visible(channel_id)
            if channel["is_archived"]:
                raise SlackError("is_archived")
            if not channel["is_member"] and WRITE_PUBLIC not in scopes:
                raise SlackError("not_in_channel")

    def can_share(self, channel_id: str) -> None:
        """Raises Slack's refusal of a file share by the bot in `channel_id`: the bot must be a member,
        which is a post's rule without chat:write.public."""
        self.can_post(channel_id, frozenset())

    def join(self, channel_id: str) -> Json:
        """conversations.join's answer fields; joining a channel the bot is in only warns."""
        with self._lock:
            channel = self._visible(channel_id)
            if channel["is_private"]:
                raise SlackError("method_not_supported_for_channel_type")
            if channel["is_archived"]:
                raise SlackError("is_archived")
            already = channel["is_member"]
            channel["is_member"] = True
            answer: Json = {"channel": copy.deepcopy(channel)}
            if already:
                answer.update(warning="already_in_channel", response_metadata={"warnings": ["already_in_channel"]})
            return answer

    def _known(self, channel_id: str) -> Json:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _visible(self, channel_id: str) -> Json:
        channel = self._known(channel_id)
        if channel["is_private"] and not channel["is_member"]:
            raise SlackError("channel_not_found")
        return channel
