"""The cutover freeze: while a rollback is open, `/cutover advance` is refused.

Kept apart from both features so the rollback can freeze and the cutover can check without either
importing the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.storage.db import transaction
from bot.storage.models import Freeze


class FreezeStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def freeze(self, *, owner: str, reason: str, now: datetime) -> None:
        """Idempotent per owner: a retried step does not stack freezes."""
        with transaction(self._engine) as session:
            existing = session.exec(
                select(Freeze).where(Freeze.owner == owner, col(Freeze.lifted_at).is_(None))
            ).first()
            if existing is None:
                session.add(Freeze(owner=owner, reason=reason, frozen_at=now))

    def lift(self, *, owner: str, by: str, now: datetime) -> bool:
        with transaction(self._engine) as session:
            rows = list(session.exec(select(Freeze).where(Freeze.owner == owner, col(Freeze.lifted_at).is_(None))))
            for row in rows:
                row.lifted_at, row.lifted_by = now, by
                session.add(row)
            return bool(rows)

    def active(self) -> Freeze | None:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Freeze).where(col(Freeze.lifted_at).is_(None)).order_by(col(Freeze.frozen_at))
            return session.exec(query).first()
