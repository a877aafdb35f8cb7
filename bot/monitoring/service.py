"""The monitor thread every bot process starts: leader election, then, on the leader only, a watcher
pass every `OPSBOT_MONITOR_INTERVAL_SECONDS` (recorded in `watcher_run`) and the quick jobs
(the App Home refresh) about once a second."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from bot.monitoring.alerts import Alerts, Poster
from bot.monitoring.leader import Elector, PgElector, SingleProcess
from bot.monitoring.measures import Measurer, build_prom
from bot.monitoring.store import MonitoringStore
from bot.monitoring.watcher import Watcher
from commands.deps import Deps

log = logging.getLogger("opsbot.monitoring")

QUICK_PERIOD_S = 1.0  # how often the leader runs the quick jobs (and the loop wakes)
RUNS_KEPT = timedelta(days=7)

Job = Callable[[], None]


def build_watcher(deps: Deps, *, poster: Poster | None = None) -> Watcher:
    store = MonitoringStore(deps.engine, deps.audit)
    alerts = Alerts(deps.runbook, store, poster or Poster(deps.slack), Measurer(deps, build_prom(deps)))
    return Watcher(deps, alerts)


def build_elector(deps: Deps) -> Elector:
    if deps.engine.dialect.name == "postgresql":
        return PgElector(deps.settings.database_url, replica=deps.replica, audit=deps.audit)
    return SingleProcess()


class Monitor:
    def __init__(
        self,
        deps: Deps,
        *,
        watcher: Watcher | None = None,
        elector: Elector | None = None,
        jobs: Sequence[Job] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deps = deps
        self.watcher = watcher or build_watcher(deps)
        self.elector = elector or build_elector(deps)
        self.store = self.watcher.store
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
        period = min(QUICK_PERIOD_S, self.deps.settings.leader_poll_seconds)
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
        self._next_try = now + self.deps.settings.leader_poll_seconds
        if self._term is None or now >= self._next_pass:
            self._term = self.elector.ensure()  # a heartbeat before every pass proves the lock is held
        if self._term is None:
            return
        if now >= self._next_pass:
            self._next_pass = now + self.deps.settings.monitor_interval_seconds
            self.run_pass(self._term)
        for job in self.jobs:
            try:
                job()
            except Exception:
                log.exception("monitor job failed")

    def run_pass(self, term: int) -> None:
        """One recorded watcher pass, or none at all if `term` was superseded (fenced out)."""
        started = self.deps.now()
        run_id = self.store.start_run(replica=self.deps.replica, term=term, at=started)
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
            self.store.finish_run(run_id, at=self.deps.now(), outcome=outcome, detail=detail)
        if run_id % 500 == 0:
            self.store.prune_runs(started - RUNS_KEPT)


def start_monitor(deps: Deps, *, jobs: Sequence[Job] = ()) -> Monitor:
    return Monitor(deps, jobs=jobs).start()
