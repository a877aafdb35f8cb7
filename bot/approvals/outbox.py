"""The outbox: every Slack effect is a row written in the transaction of the state change that causes
it, so a decision never waits for Slack and a message is never lost with a crash. commands.webapi.notifier
delivers the rows.

A *stream* is one message and its thread (e.g. an approval's card): its first post goes out before
anything else of it; then the message's updates go out in order, and so do its thread replies. Repeated updates of one
message are coalesced: an update with a later update behind it is superseded, never sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, and_, exists, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.storage.db import transaction, utcnow
from bot.storage.models import OutboxRow

PENDING, DELIVERED, SUPERSEDED, GIVEN_UP = "pending", "delivered", "superseded", "given_up"
KINDS = ("post", "update", "reply", "respond")
METHOD = {"post": "chat.postMessage", "reply": "chat.postMessage", "update": "chat.update", "respond": "response_url"}


@dataclass(frozen=True)
class Note:
    """One Slack effect: `post` opens the stream's message, `update` replaces it, `reply` posts in its
    thread (`broadcast`: also to the channel), `respond` answers through a response_url.
    `view` names how the notifier draws `data` (e.g. "approval": a Card's data, "notice": a text);
    `blocks`, already drawn, is only ever set by rows queued before views existed."""

    stream: str
    kind: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    broadcast: bool = False
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    view: str = ""
    data: dict[str, Any] | None = None

    def payload(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "blocks": self.blocks,
                "view": self.view,
                "data": self.data,
                "broadcast": self.broadcast,
                "url": self.url,
                "extra": self.extra,
            },
            sort_keys=True,
        )


class NotDelivered(Exception):
    """Slack did not take a note sent straight to it (refused, unreachable)."""


class Direct(Protocol):
    """Slack, told at once and best-effort: only for when the store, and so the outbox, is down.
    Both raise NotDelivered."""

    def post(self, note: Note) -> None: ...

    def update(self, note: Note, *, ts: str) -> None: ...


def add_notes(session: Session, notes: Iterable[Note], *, now: datetime) -> int:
    """Queue `notes` inside the caller's transaction (they commit, or vanish, with its state change)."""
    count = 0
    for note in notes:
        if note.kind not in KINDS:
            raise ValueError(f"unknown outbox kind {note.kind!r}")
        session.add(
            OutboxRow(
                stream=note.stream,
                kind=note.kind,
                channel=note.channel,
                payload=note.payload(),
                status=PENDING,
                created_at=now,
                next_at=now,
            )
        )
        count += 1
    return count


def _waits_for(kind: Any, earlier: Any) -> Any:
    """A stream's post comes first (it gives the ts everything else targets); after it, the message's
    updates and the thread's replies are two queues, so a card update held by Slack never holds up the
    outcome told in the thread, nor the other way round."""
    card = ("post", "update")
    return or_(earlier == "post", and_(kind.in_(card), earlier.in_(card)), and_(kind == earlier, kind != "update"))


def payload_of(row: OutboxRow) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(row.payload)
    return loaded


class Outbox:
    """The outbox table, and the event that wakes this process's notifier after a commit."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self.wakeup = threading.Event()
        # The outbox keeps its own time (tests speed it up without touching approval TTLs).
        self.clock = clock
        self.on_posted: list[Callable[[str, str], None]] = []  # (stream, ts) once a stream's message is posted
        self.on_given_up: list[Callable[[OutboxRow, str], None]] = []  # (row, error): a stream's post given up

    def now(self) -> datetime:
        return self.clock()

    def wake(self) -> None:
        self.wakeup.set()

    def enqueue(self, notes: Sequence[Note]) -> None:
        """Queue notes that follow no state change of their own (the state was committed already)."""
        if not notes:
            return
        with transaction(self._engine) as session:
            add_notes(session, notes, now=self.now())
        self.wake()

    def claim(
        self, *, now: datetime, replica: str, lease: timedelta, limit: int, blocked: frozenset[str] = frozenset()
    ) -> list[OutboxRow]:
        """Claim the due head row of up to `limit` streams, skipping rows another replica holds (SKIP
        LOCKED on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE). Superseded updates are
        closed on the way. `blocked` kinds wait (their Slack method asked us to retry later)."""
        with transaction(self._engine) as session:
            self._supersede(session, now)
            earlier = aliased(OutboxRow)
            head = ~exists().where(
                and_(
                    col(earlier.stream) == col(OutboxRow.stream),
                    col(earlier.id) < col(OutboxRow.id),
                    col(earlier.status) == PENDING,
                    _waits_for(col(OutboxRow.kind), col(earlier.kind)),
                )
            )
            query = select(OutboxRow).where(
                col(OutboxRow.status) == PENDING,
                col(OutboxRow.next_at) <= now,
                head,
                (col(OutboxRow.claimed_until).is_(None)) | (col(OutboxRow.claimed_until) < now),
            )
            if blocked:
                query = query.where(col(OutboxRow.kind).not_in(sorted(blocked)))
            query = query.order_by(col(OutboxRow.id)).limit(limit).with_for_update(skip_locked=True)
            rows = list(session.exec(query))
            for row in rows:
                row.claimed_by, row.claimed_until = replica, now + lease
                row.attempts += 1
            session.flush()
            return rows

    @staticmethod
    def _supersede(session: Session, now: datetime) -> None:
        later = aliased(OutboxRow)
        newer = exists().where(
            and_(
                col(later.stream) == col(OutboxRow.stream),
                col(later.id) > col(OutboxRow.id),
                col(later.kind) == "update",
                col(later.status) == PENDING,
            )
        )
        session.execute(
            update(OutboxRow)
            .where(
                col(OutboxRow.status) == PENDING,
                col(OutboxRow.kind) == "update",
                newer,
                (col(OutboxRow.claimed_until).is_(None)) | (col(OutboxRow.claimed_until) < now),
            )
            .values(status=SUPERSEDED, done_at=now)
            .execution_options(synchronize_session=False)
        )

    def stream_ts(self, stream: str) -> str | None:
        """The ts of the stream's message once posted (None: not posted, or its post was given up)."""
        with Session(self._engine) as session:
            query = select(OutboxRow.ts).where(
                col(OutboxRow.stream) == stream,
                col(OutboxRow.ts).is_not(None),
                col(OutboxRow.status) == DELIVERED,
                col(OutboxRow.kind).in_(("post", "update")),
            )
            return session.exec(query.order_by(col(OutboxRow.id)).limit(1)).first()

    def finish(
        self, row: OutboxRow, *, status: str, now: datetime, replica: str, ts: str | None = None, error: str = ""
    ) -> bool:
        """Close a claimed row (delivered or given up); False when our claim was lost meanwhile."""
        values: dict[str, Any] = {
            "status": status,
            "done_at": now,
            "ts": ts,
            "error": error[:2000],
            "claimed_by": None,
            "claimed_until": None,
        }
        with transaction(self._engine) as session:
            result = session.execute(
                update(OutboxRow)
                .where(
                    col(OutboxRow.id) == row.id,
                    col(OutboxRow.status) == PENDING,
                    col(OutboxRow.claimed_by) == replica,
                )
                .values(**values)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def retry_at(self, row: OutboxRow, *, at: datetime, error: str, replica: str) -> None:
        with transaction(self._engine) as session:
            session.execute(
                update(OutboxRow)
                .where(
                    col(OutboxRow.id) == row.id,
                    col(OutboxRow.claimed_by) == replica,
                )
                .values(next_at=at, claimed_by=None, claimed_until=None, error=error[:2000])
            )

    def pending_count(self, *, created_before: datetime | None = None) -> int:
        with Session(self._engine) as session:
            query = select(func.count()).where(col(OutboxRow.status) == PENDING)
            if created_before is not None:
                query = query.where(col(OutboxRow.created_at) < created_before)
            return int(session.scalar(query) or 0)

    def given_up(self, *, since: datetime, limit: int = 5) -> list[OutboxRow]:
        """Messages the notifier gave up on since `since`, newest first (the App Home lists them)."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(OutboxRow).where(col(OutboxRow.status) == GIVEN_UP, col(OutboxRow.done_at) >= since)
            return list(session.exec(query.order_by(col(OutboxRow.id).desc()).limit(limit)))

    def rows(self, stream: str | None = None) -> list[OutboxRow]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(OutboxRow)
            if stream is not None:
                query = query.where(col(OutboxRow.stream) == stream)
            return list(session.exec(query.order_by(col(OutboxRow.id))))
