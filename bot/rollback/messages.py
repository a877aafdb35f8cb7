"""The rollback's Slack messages: the one progress message, its outcome in the approval card's thread,
and posts to the channels. All go through the outbox (bot.approvals.outbox): a rollback never waits for Slack,
and Slack failing never stops one. The store is the truth and `/rollback status` shows it; only a
store that will not take the note either makes a post report False.
"""

from __future__ import annotations

import logging
from itertools import count

from bot.approvals.outbox import Note, Outbox
from bot.storage.errors import StoreUnavailable
from bot.text import clip

log = logging.getLogger("opsbot.rollback")


class Messages:
    def __init__(self, outbox: Outbox, rollback_id: str, approval_id: str = "") -> None:
        self._outbox, self._id, self._approval = outbox, rollback_id, approval_id
        self._seq = count(1)

    @property
    def progress_stream(self) -> str:
        return f"rollback:{self._id}:progress"

    def post_progress(self, channel: str, text: str) -> bool:
        return self._queue(_notice(self.progress_stream, "post", channel, text))

    def update_progress(self, channel: str, text: str) -> None:
        """The latest state of the progress message (updates not yet sent are replaced by this one)."""
        self._queue(_notice(self.progress_stream, "update", channel, text))

    def outcome(self, channel: str, text: str) -> bool:
        """The outcome as a new message in the approval card's thread, shown in the channel too."""
        if not self._approval:
            return self.post(channel, text)
        return self._queue(Note(f"approval:{self._approval}", "reply", channel, clip(text, 3000), broadcast=True))

    def post(self, channel: str, text: str) -> bool:
        return self._queue(Note(f"rollback:{self._id}:{next(self._seq)}", "post", channel, clip(text, 3000)))

    def _queue(self, note: Note) -> bool:
        try:
            self._outbox.enqueue([note])
        except StoreUnavailable as exc:
            log.warning("rollback %s: message to %s not queued: %s", self._id, note.channel, exc)
            return False
        return True


def _notice(stream: str, kind: str, channel: str, text: str) -> Note:
    """Drawn by the notifier as a notice (commands.views.blocks): the whole text, in sections."""
    return Note(stream, kind, channel, clip(text, 3000), view="notice", data={"text": text})
