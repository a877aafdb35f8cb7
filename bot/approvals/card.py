"""What an approval's card shows, as plain data (commands.views.blocks draws it in Block Kit)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Card:
    """Everything an approval message shows; `reason` is raw user text (escaped here)."""

    title: str
    effect: str  # mrkdwn, already safe
    reason: str
    requester: str
    approver_role: str  # e.g. "a halt authority"
    expires_at: datetime
    approval_id: str
    request_id: str
    status: str | None = None  # mrkdwn, already safe; None while waiting
    buttons: bool = True
    approve_label: str = "Approve"
    reject_label: str = "Reject"
    audit: str = ""  # the signed audit checkpoint's compact line, once the action ran
    effect_label: str = "What will happen"  # "What was asked" once the request is no longer open
    # The approver's confirm dialog: a question and what the click does (plain words, not mrkdwn).
    confirm_title: str = ""
    confirm_text: str = ""

    def data(self) -> dict[str, Any]:
        """The card as JSON-ready plain data: what an outbox note carries (view "approval")."""
        found = asdict(self)
        found["expires_at"] = self.expires_at.isoformat()
        return found

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Card:
        return cls(**{**data, "expires_at": datetime.fromisoformat(str(data["expires_at"]))})
