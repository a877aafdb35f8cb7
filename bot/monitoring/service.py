"""The monitor thread every bot process starts: leader election, then, on the leader only, a watcher
pass every `OPSBOT_MONITOR_INTERVAL_SECONDS` (recorded in `watcher_run`) and the quick jobs
(the App Home refresh) about once a second."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.monitoring.leader import Elector, PgElector, SingleProcess
from bot.monitoring.watcher import Watcher

log = logging.getLogger("opsbot.monitoring")

QUICK_PERIOD_S = 1.0  # how often the leader runs the quick jobs (and the loop wakes)
RUNS_KEPT = timedelta(days=7)

Job = Callable[[], None]


def build_elector(engine: Engine, database_url: str, *, replica: str, audit: AuditLog) -> Elector:
    if engine.dialect.name == "postgresql":
        return PgElector(database_url, replica=replica, audit=audit)
    return SingleProcess()


class Monitor:
    """`interval_s` between watcher passes, `poll_s` between tries for the lead; `now` stamps the runs."""

    def __init__(
        self,
        watcher: Watcher,
        elector: Elector,
        *,
        replica: str,
        interval_s: float,
        poll_s: float,
        now: Callable[[], datetime],
        jobs: Sequence[Job] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watcher = watcher
        self.elector = elector
        self.store = watcher.store
        self.replica = replica
        self.interval_s = interval_s
        self.poll_s = poll_s
        self.now = now
        self.jobs = list(jobs)
        self._clock = clock
        self._next_pass = 0.0
        self._next_try = 0.0
        self._term: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsbot-monitor", daemon=True)

    @property
    def leading(self) -> bool:
        return self._term is not None

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.elector.release()
        self.watcher.alerts.measurer.close()

    def _run(self) -> None:
        period = min(QUICK_PERIOD_S, self.poll_s)
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("monitor step failed; will try again")
            self._stop.wait(period)

    def step(self) -> None:
        """Lead (or try to, once per poll interval); as leader run what is due."""
        now = self._clock()
        if self._term is None and now < self._next_try:
            return
        self._next_try = now + self.poll_s
        if self._term is None or now >= self._next_pass:
            self._term = self.elector.ensure()  # a heartbeat before every pass proves the lock is held
        if self._term is None:
            return
        if now >= self._next_pass:
            self._next_pass = now + self.interval_s
            self.run_pass(self._term)
        for job in self.jobs:
            try:
                job()
            except Exception:
                log.exception("monitor job failed")

    def run_pass(self, term: int) -> None:
        """One recorded watcher pass, or none at all if `term` was superseded (fenced out)."""
        started = self.now()
        run_id = self.store.start_run(replica=self.replica, term=term, at=started)
        if run_id is None:
            log.warning("term %s is no longer the leader's; not running", term)
            self._term = None
            self.elector.release()
            return
        outcome, detail = "ok", ""
        try:
            detail = self.watcher.tick()
        except Exception as exc:
            log.exception("watcher pass failed")
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        finally:
            self.store.finish_run(run_id, at=self.now(), outcome=outcome, detail=detail)
        if run_id % 500 == 0:
            self.store.prune_runs(started - RUNS_KEPT)
