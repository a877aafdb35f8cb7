"""Request ids: one per Slack action, the same in the ack and in the work done after it."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from typing import Any


def request_id_for(body: Mapping[str, Any]) -> str:
    """Derived from Slack's own per-action ids, so a retried delivery keeps its id."""
    actions = body.get("actions") or [{}]
    seed = "|".join(
        str(part)
        for part in (
            body.get("trigger_id", ""),
            actions[0].get("action_ts", "") if isinstance(actions[0], Mapping) else "",
            body.get("command", ""),
            body.get("text", ""),
            body.get("user_id", "") or (body.get("user") or {}).get("id", ""),
        )
    )
    return "ops-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def default_replica() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
