"""Readings of the watched signals: PromQL from Prometheus, and the three the bot measures itself.

Bot measures: `control-drift` (backend trading-control against the Cosmos documents, now),
`kill-switch-misfires` (halt/resume read-backs that showed the change not applied) and
`operator-intervention-failures` (the bot's approved actions that failed), both counted from the
audit log over the signal's window. Queries run at once on a small pool under one deadline, so a
slow Prometheus delays a pass by one timeout, not one per signal.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from bot.clients.backend import TradingBackend
from bot.clients.backend_errors import BackendError
from bot.clients.cosmos import CosmosReader
from bot.clients.cosmos_errors import CosmosError
from bot.clients.prometheus import PromClient, PromError
from bot.drift.check import bounded
from bot.drift.compare import compare
from bot.monitoring.signals import Reading, promql, worst
from bot.runbook.model import Signal
from bot.settings import Settings
from bot.storage.db import as_utc
from bot.storage.models import AuditEvent
from bot.text import safe, when

log = logging.getLogger("opsbot.monitoring")

NOT_CONFIGURED = "OPSBOT_PROMETHEUS_URL is not set"
COSMOS_NOT_CONFIGURED = "Cosmos is not configured (COSMOS_ENDPOINT, COSMOS_KEY, COSMOS_DATABASE)"
BACKEND_NOT_GIVEN = "this reader has no trading backend to compare Cosmos with"
PROM_TIMEOUT_S = 5.0  # OPSBOT_PROMETHEUS_TIMEOUT_SECONDS's default
CHART_POINTS = 240  # query_range resolution: enough for a 480 px chart
SAMPLES_KEPT = 500  # per bot-measured signal, for its chart
DETAIL_ROWS = 5  # what an alert names of a bot-measured value (the newest first)


def build_prom(settings: Settings, http: httpx.Client) -> PromClient | None:
    if not settings.prometheus_url:
        return None
    token = settings.prometheus_token.get_secret_value() if settings.prometheus_token else None
    return PromClient(settings.prometheus_url, http=http, timeout_s=settings.prometheus_timeout_seconds, token=token)


class Measurer:
    """Reads signals: PromQL through `prom`, control drift from `backend` against `cosmos`, the rest
    from the audit log in `engine`. A source left out (None) makes its signals "not configured"."""

    def __init__(
        self,
        engine: Engine,
        *,
        prom: PromClient | None = None,
        backend: TradingBackend | None = None,
        cosmos: CosmosReader | None = None,
        timeout_s: float = PROM_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self.prom = prom
        self._backend = backend
        self._cosmos = cosmos
        self._budget = timeout_s + 2.0  # one pass waits for its readings this long at most
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="opsbot-measure")
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._bot: dict[str, Callable[[Signal, datetime], tuple[float, str]]] = {
            "control-drift": self._drift,
            "kill-switch-misfires": self._misfires,
            "operator-intervention-failures": self._failures,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def read(self, signals: Sequence[Signal], now: datetime) -> list[Reading]:
        futures = {s.id: self._pool.submit(self.read_one, s, now) for s in signals}
        wait(list(futures.values()), timeout=self._budget)
        return [_result(signal_id, future, now, self._budget) for signal_id, future in futures.items()]

    def read_one(self, signal: Signal, now: datetime) -> Reading:
        if signal.source == "bot":
            return self._read_bot(signal, now)
        if self.prom is None:
            return Reading(signal.id, now, None, NOT_CONFIGURED, unconfigured=True)
        try:
            answer = self.prom.query(promql(signal), at=now)
        except PromError as exc:
            return Reading(signal.id, now, None, exc.detail)
        value = worst(signal, (s.value for s in answer.samples))
        if value is None:
            why = "Prometheus returned no data (empty vector)" if not answer.samples else "the value is NaN"
            return Reading(signal.id, now, None, why)
        return Reading(signal.id, now, value)

    def series(self, signal: Signal, start: datetime, end: datetime) -> list[tuple[float, float]]:
        """The signal over [start, end] for its chart; [] when it cannot be had."""
        if signal.source == "bot":
            return [p for p in self._samples.get(signal.id, ()) if start.timestamp() <= p[0] <= end.timestamp()]
        if self.prom is None:
            return []
        step = timedelta(seconds=max(1.0, (end - start).total_seconds() / CHART_POINTS))
        try:
            found = self.prom.query_range(promql(signal), start=start, end=end, step=step)
        except PromError as exc:
            log.info("no chart for %s: %s", signal.id, exc.detail)
            return []
        merged: dict[float, float] = {}
        for series in found:
            for at, value in series.points:
                merged[at] = value if at not in merged else (worst(signal, (merged[at], value)) or value)
        return sorted(merged.items())

    def _read_bot(self, signal: Signal, now: datetime) -> Reading:
        try:
            value, detail = self._bot[signal.measure or ""](signal, now)
        except _NoData as exc:
            return Reading(signal.id, now, None, str(exc), unconfigured=exc.unconfigured)
        kept = self._samples.setdefault(signal.id, deque(maxlen=SAMPLES_KEPT))
        kept.append((now.timestamp(), value))
        return Reading(signal.id, now, value, detail=detail)

    def _drift(self, signal: Signal, now: datetime) -> tuple[float, str]:
        cosmos, backend = self._cosmos, self._backend
        if cosmos is None:
            raise _NoData(COSMOS_NOT_CONFIGURED, unconfigured=True)
        if backend is None:
            raise _NoData(BACKEND_NOT_GIVEN, unconfigured=True)
        try:
            control = backend.trading_control(request_id=f"mon-{secrets.token_hex(8)}").data
            documents = bounded(cosmos.read_control_documents, 2.0)
        except BackendError as exc:
            raise _NoData(f"the backend's trading-control did not answer ({exc.operator_text()})") from None
        except TimeoutError:
            raise _NoData("Cosmos did not answer within 2 s") from None
        except CosmosError as exc:
            raise _NoData(f"Cosmos: {exc.detail}") from None
        # Informational differences (the revision, a never-written global) are not drift to act on.
        drifts = [drift for drift in compare(control, documents) if not drift.informational]
        shown = "; ".join(
            f"{safe(d.subject, 80)}: backend {safe(d.backend, 40)}, Cosmos {safe(d.cosmos, 40)}"
            for d in drifts[:DETAIL_ROWS]
        )
        return float(len(drifts)), shown

    def _misfires(self, signal: Signal, now: datetime) -> tuple[float, str]:
        # A read-back showing the halt or resume not applied (a failed read-back is "unconfirmed": it proves nothing).
        return self._count(
            now - signal.window,
            col(AuditEvent.action).in_(["halt.failed", "resume.failed"]),
            col(AuditEvent.outcome) == "not_applied",
        )

    def _failures(self, signal: Signal, now: datetime) -> tuple[float, str]:
        return self._count(
            now - signal.window,
            col(AuditEvent.outcome) == "failed",
            or_(col(AuditEvent.action).endswith(".failed"), col(AuditEvent.action).endswith(".error")),
        )

    def _count(self, since: datetime, *where: object) -> tuple[float, str]:
        """How many audit rows match, and the newest few named (approval, time, why) for the alert."""
        try:
            with Session(self._engine) as session:
                query = select(AuditEvent).where(col(AuditEvent.at) >= as_utc(since), *where)  # type: ignore[arg-type]
                rows = list(session.exec(query.order_by(col(AuditEvent.seq).desc())))
        except Exception as exc:  # the store is down: that is no data, not zero failures
            raise _NoData(f"the audit log could not be read ({type(exc).__name__})") from None
        return float(len(rows)), "\n".join(_named(row) for row in rows[:DETAIL_ROWS])


def _named(row: AuditEvent) -> str:
    subject = f"approval `{safe(row.approval_id, 40)}`" if row.approval_id else f"request `{safe(row.request_id, 40)}`"
    return (
        f"• `{safe(row.action, 60)}` {subject} at {when(as_utc(row.at))} by <@{safe(row.user_id, 20)}>: "
        f"{safe(row.detail or row.outcome, 200)}"
    )


class _NoData(Exception):
    def __init__(self, why: str, *, unconfigured: bool = False) -> None:
        super().__init__(why)
        self.unconfigured = unconfigured


def _result(signal_id: str, future: Future[Reading], now: datetime, budget: float) -> Reading:
    if not future.done():
        future.cancel()
        return Reading(signal_id, now, None, f"no answer within {budget:g} s")
    try:
        return future.result()
    except Exception as exc:  # a reading must never stop the pass
        log.exception("reading %s failed", signal_id)
        return Reading(signal_id, now, None, f"the reading failed ({type(exc).__name__})")
