"""Persistence of gate evaluations, attestations and observed backend versions; each write that
matters is audited in the same transaction."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.audit.log import AuditLog, Entry
from bot.gate.composite import EvaluationView, VersionChange
from bot.gate.engine import AttestationView, GateVerdict, ItemOutcome
from bot.gate.models import Attestation, BackendVersionObservation, GateEvaluation
from bot.storage.db import as_utc, is_postgres, transaction

_PG_VERSION_LOCK = 7_314_159_266  # serialises "insert only when the version changed" across replicas


def new_evaluation_id() -> str:
    return "gate_" + secrets.token_hex(6)


def evaluation_view(row: GateEvaluation) -> EvaluationView:
    outcomes = tuple(ItemOutcome.from_json(doc) for doc in json.loads(row.results))
    return EvaluationView(
        row.id,
        as_utc(row.started_at),
        row.version,
        GateVerdict(row.verdict),
        row.requested_by,
        row.request_id,
        outcomes,
    )


def attestation_view(row: Attestation) -> AttestationView:
    return AttestationView(row.check_id, row.version, row.evidence, row.attested_by, as_utc(row.attested_at))


class GateStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    # Evaluations.

    def save_evaluation(self, row: GateEvaluation, entry: Entry) -> None:
        with transaction(self._engine) as session:
            session.add(row)
            session.flush()
            self._audit.append(session, entry)

    def recent(self, limit: int = 10) -> list[GateEvaluation]:
        return self._evaluations(select(GateEvaluation), limit)

    def latest_for_version(self, version: str) -> EvaluationView | None:
        rows = self._evaluations(select(GateEvaluation).where(GateEvaluation.version == version), 1)
        return evaluation_view(rows[0]) if rows else None

    def last_go(self) -> EvaluationView | None:
        rows = self._evaluations(select(GateEvaluation).where(GateEvaluation.verdict == GateVerdict.GO.value), 1)
        return evaluation_view(rows[0]) if rows else None

    def since(self, at: datetime, limit: int = 50) -> list[EvaluationView]:
        """Evaluations started at or after `at`, newest first."""
        query = select(GateEvaluation).where(col(GateEvaluation.started_at) >= as_utc(at))
        return [evaluation_view(row) for row in self._evaluations(query, limit)]

    def _evaluations(self, query: SelectOfScalar[GateEvaluation], limit: int) -> list[GateEvaluation]:
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.exec(query.order_by(col(GateEvaluation.started_at).desc()).limit(limit)))

    # Attestations.

    def attest(self, row: Attestation, entry: Entry) -> None:
        with transaction(self._engine) as session:
            session.add(row)
            session.flush()
            self._audit.append(session, entry)

    def attestations(self, version: str) -> dict[str, AttestationView]:
        """The latest attestation of each check for `version`."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Attestation).where(Attestation.version == version).order_by(col(Attestation.id))
            return {row.check_id: attestation_view(row) for row in session.exec(query)}

    # Observed backend versions.

    def observe(self, version: str, *, at: datetime, source: str) -> VersionChange | None:
        """Record `version` if it differs from the last one seen; the change, when it is one."""
        with transaction(self._engine) as session:
            if is_postgres(self._engine):
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_VERSION_LOCK})
            last = session.exec(
                select(BackendVersionObservation).order_by(col(BackendVersionObservation.id).desc()).limit(1)
            ).first()
            if last is not None and last.version == version:
                return None
            previous = last.version if last else None
            session.add(
                BackendVersionObservation(
                    version=version, previous_version=previous, observed_at=at, source=source[:32]
                )
            )
        return VersionChange(version, previous, at) if previous is not None else None

    def changes_since(self, at: datetime) -> list[VersionChange]:
        """Version changes (not the first observation ever) seen after `at`, oldest first."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = (
                select(BackendVersionObservation)
                .where(
                    col(BackendVersionObservation.observed_at) > as_utc(at),
                    col(BackendVersionObservation.previous_version).is_not(None),
                )
                .order_by(col(BackendVersionObservation.id))
            )
            return [
                VersionChange(r.version, r.previous_version or "", as_utc(r.observed_at)) for r in session.exec(query)
            ]
