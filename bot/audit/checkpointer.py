"""Signing the chain's head: right after every executed privileged action, and every few minutes
while the chain grows. Each checkpoint is stored beside the chain and written to the structured log
(stdout/stderr), which a database writer cannot reach."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.audit.checkpoint import LOG_MARKER, Checkpoint, signed
from bot.audit.keys import key_id
from bot.storage.db import as_utc, transaction, utcnow
from bot.storage.errors import StoreUnavailable
from bot.storage.models import AuditCheckpoint, AuditEvent

log = logging.getLogger("opsbot.audit")

DEFAULT_INTERVAL = timedelta(minutes=2)


def head(session: Session) -> tuple[int, str] | None:
    found = session.exec(select(AuditEvent.seq, AuditEvent.hash).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    return (int(found[0]), str(found[1])) if found else None


def _as_checkpoint(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, as_utc(row.at), row.replica, row.key_id, row.signature)


def latest(engine: Engine) -> Checkpoint | None:
    with Session(engine) as session:
        query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc(), col(AuditCheckpoint.at).desc())
        row = session.exec(query.limit(1)).first()
        return _as_checkpoint(row) if row else None


def stored(engine: Engine, *, since_seq: int = 0) -> Iterator[Checkpoint]:
    with Session(engine) as session:
        query = select(AuditCheckpoint).where(col(AuditCheckpoint.seq) >= since_seq)
        for row in session.exec(query.order_by(col(AuditCheckpoint.seq), col(AuditCheckpoint.at))):
            yield _as_checkpoint(row)


class Checkpointer:
    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        *,
        replica: str,
        interval: timedelta = DEFAULT_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._key = key
        self._replica = replica
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()  # one signer per process at a time: a head is signed once here

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self._key.public_key())

    def sign_head(self) -> Checkpoint | None:
        """Sign the current head unless it is already signed; the latest checkpoint either way."""
        with self._lock, transaction(self._engine) as session:
            current = head(session)
            if current is None:
                return None
            newest = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc()).limit(1)).first()
            if newest is not None and newest.seq >= current[0]:
                return _as_checkpoint(newest)
            checkpoint = signed(self._key, seq=current[0], hash_=current[1], at=self._clock(), replica=self._replica)
            session.add(
                AuditCheckpoint(
                    seq=checkpoint.seq,
                    replica=checkpoint.replica,
                    hash=checkpoint.hash,
                    at=checkpoint.at,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )
        log.info("%s%s", LOG_MARKER, checkpoint.line())
        return checkpoint

    def after_action(self) -> Checkpoint | None:
        """Right after an executed privileged action. Never raises: the action already happened."""
        try:
            return self.sign_head()
        except (StoreUnavailable, OSError) as exc:
            log.error("could not sign an audit checkpoint after an action: %s", exc)
        except Exception:
            log.exception("could not sign an audit checkpoint after an action")
        return None

    def tick(self) -> Checkpoint | None:
        """From the background loop: sign when the chain grew and the last checkpoint is old enough."""
        try:
            newest = latest(self._engine)
        except Exception as exc:  # the store is down: the next tick tries again
            log.warning("could not read the latest audit checkpoint: %s", type(exc).__name__)
            return None
        if newest is not None and self._clock() - newest.at < self._interval:
            return None
        return self.after_action()
