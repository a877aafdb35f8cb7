"""The stand-ins and the real bot, wired for a rehearsal.

`rehearsal.sim.stack.Stack` builds the bot exactly as `opsbot serve` does, against the local Slack peer,
platform auth (JWKS and client credentials), GitHub and the trading backend. This adds what a
rehearsal needs on top: the Cosmos-protocol server when Node has it installed (behind a forwarder
that the "Cosmos unreachable" drill cuts), Debian's Prometheus when it is installed (scraping the
backend's /metrics every second, so the monitoring's Prometheus signals are watched), the
backend's control state mirrored into Cosmos as the real backend persists it there, production
deployments and green CI for a believable release, the seeded people and channel, and the bot's
background sweeper (expiry, break-glass escalation).
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from bot.bootstrap import Sweeper
from bot.monitoring.service import Monitor
from commands.home_publish import HomePublisher
from commands.monitoring import build_monitor
from rehearsal.sim import cosmos as sim_cosmos
from rehearsal.sim.stack import Stack
from rehearsal.workspace import people
from rehearsal.workspace import prometheus as local_prometheus
from rehearsal.workspace.proxy import Forwarder
from rehearsal.workspace.state import StatePaths

log = logging.getLogger("opsbot.workspace")

PREVIOUS = "9f8e7d6a1b2c3d4e5f60718293a4b5c6d7e8f901"  # the previous stable release: the rollback target
DEPLOYED = "abc1234e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2"  # what the backend reports as deployed
CHECKS = ("pnpm verify", "pnpm lint", "pnpm smoke:release")
COSMOS_DATABASE = "trading"
# The runbook's containers with the partition keys the monorepo uses.
CONTAINERS = {
    "dynamic_config": "/id",
    "trading-control": "/id",
    "order": "/tenantId",
    "trade-history": "/accountId",
    "manual-entry": "/tenantId",
}


# Stages still ask for time in a rehearsal, a minute instead of the runbook's hours.
REHEARSAL_SOAK_SECONDS = 60.0


def bot_overrides(paths: StatePaths, soak_seconds: float = REHEARSAL_SOAK_SECONDS) -> dict[str, Any]:
    """Settings besides the stand-ins' URLs: roles, the channel, rehearsal-sized timings.

    Credentials that could come from the developer's environment are cleared, so the rehearsal
    bot never holds a real token and its auth source is unambiguous (the JWKS stand-in only)."""
    return {
        **people.role_settings(),
        "OPSBOT_INCIDENT_CHANNEL": people.CHANNEL_ID,
        "OPSBOT_ANNOUNCE_CHANNEL": None,
        "OPSBOT_INCIDENT_DIR": str(paths.incidents),
        "OPSBOT_ROLLBACK_POLL_SECONDS": 1,
        "OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS": 120,
        "OPSBOT_ROLLBACK_VERSION_TIMEOUT_SECONDS": 30,
        "OPSBOT_GATE_DEADLINE_SECONDS": 10,
        "OPSBOT_SOAK_SECONDS": soak_seconds,
        # Post-cutover monitoring reacts within a drill's pace: with 1 s scrapes, an alert within ~10 s.
        "OPSBOT_MONITOR_INTERVAL_SECONDS": 2,
        "OPSBOT_PROMETHEUS_URL": None,  # the workspace's own Prometheus, or none (LocalWorld._start_prometheus)
        "OPSBOT_PROMETHEUS_TOKEN": None,
        "OPSBOT_CHECK_NAMES": {},
        "PLATFORM_SERVICE_TOKEN": None,
        "JWT_SECRET": None,
        "PLATFORM_JWT_PUBLIC_KEY": None,
        "COSMOS_ENDPOINT": None,
        "COSMOS_KEY": None,
        "COSMOS_DATABASE": None,
    }


class LocalWorld:
    def __init__(
        self,
        paths: StatePaths,
        *,
        use_cosmos: bool = True,
        use_prometheus: bool = True,
        soak_seconds: float = REHEARSAL_SOAK_SECONDS,
    ) -> None:
        self.paths = paths
        self.soak_seconds = soak_seconds
        self.use_cosmos = use_cosmos
        self.use_prometheus = use_prometheus
        self.prometheus: local_prometheus.LocalPrometheus | None = None
        self.prometheus_problem = ""
        self.cosmos: sim_cosmos.CosmosServer | None = None
        self.forwarder: Forwarder | None = None
        self.cosmos_problem = ""
        self.mirror_paused = False  # the drift drill: the backend's writes stop reaching Cosmos
        self._cosmos_lock = threading.Lock()
        self._journal_lock = threading.Lock()
        self._entries: list[list[str | None]] = []
        self.stack: Stack
        self._sweeper: Sweeper | None = None
        self._monitor: Monitor | None = None  # monitoring watchers and the App Home refresh, as `serve` runs them
        self._home: HomePublisher | None = None

    def start(self) -> LocalWorld:
        overrides = {**bot_overrides(self.paths, self.soak_seconds), **self._start_cosmos(), **self._start_prometheus()}
        try:
            self.stack = Stack(database_url=self.paths.database_url, overrides=overrides).start()
        except BaseException:
            self._stop_children()
            raise
        if self.prometheus is not None:
            self.prometheus.scrape(self.stack.backend.url.removeprefix("http://"))
        self._sweeper = Sweeper(self.stack.deps, interval=2.0).start()
        self._home = HomePublisher(self.stack.deps)
        self._monitor = build_monitor(self.stack.deps, jobs=[self._home.poll]).start()
        self._seed()
        return self

    def stop(self) -> None:
        rollback = self.stack.deps.actions.get("rollback")
        runner = getattr(rollback, "runner", None)
        if runner is not None:
            runner.stop(timeout=10)  # a rollback still following its run ends as interrupted
        if self._sweeper is not None:
            self._sweeper.stop()
        if self._monitor is not None:
            self._monitor.stop()
        if self._home is not None:
            self._home.close()
        self.stack.stop()
        self._stop_children()

    def _stop_children(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.cosmos is not None:
            self.cosmos.stop()
        if self.prometheus is not None:
            self.prometheus.stop()

    # -- Prometheus -----------------------------------------------------------------------------

    def _start_prometheus(self) -> dict[str, Any]:
        """Started before the bot, so OPSBOT_PROMETHEUS_URL only ever names a running server."""
        if not self.use_prometheus:
            self.prometheus_problem = "switched off for this workspace"
            return {}
        executable = local_prometheus.binary()
        if executable is None:
            self.prometheus_problem = local_prometheus.missing_reason()
            return {}
        try:
            self.prometheus = local_prometheus.LocalPrometheus(executable).start()
        except (OSError, local_prometheus.PrometheusFailed) as exc:
            log.warning("Prometheus did not start: %s", exc)
            self.prometheus_problem = f"Prometheus did not start ({exc}); its signals are not watched here"
            return {}
        return {"OPSBOT_PROMETHEUS_URL": self.prometheus.url}

    # -- Cosmos ---------------------------------------------------------------------------------

    def _start_cosmos(self) -> dict[str, Any]:
        if not self.use_cosmos:
            self.cosmos_problem = "switched off for this workspace"
            return {}
        if not sim_cosmos.available():
            self.cosmos_problem = (
                f"the Cosmos-protocol server needs Node and `npm ci` ({sim_cosmos.CLI} is "
                "missing or node is not on PATH)"
            )
            return {}
        try:
            server = sim_cosmos.CosmosServer().start()
            server.seed(COSMOS_DATABASE, CONTAINERS)
        except Exception as exc:  # a rehearsal without Cosmos is still a rehearsal: say why
            log.warning("Cosmos-protocol server did not start: %s", exc)
            self.cosmos_problem = f"the Cosmos-protocol server did not start: {exc}"
            return {}
        self.cosmos = server
        host, port = server.endpoint.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.forwarder = Forwarder((host, int(port))).start()
        endpoint = f"http://127.0.0.1:{self.forwarder.port}/"
        return {"COSMOS_ENDPOINT": endpoint, "COSMOS_KEY": server.key, "COSMOS_DATABASE": COSMOS_DATABASE}

    def write_control(self, control: dict[str, Any], *, flip_global: bool = False) -> None:
        """Write the backend's trading-control document into Cosmos's `trading-control` container."""
        if self.cosmos is None:
            return
        glob = control.get("global") or {}
        halted = bool(glob.get("halted")) != flip_global
        reason = "drill: written by another writer (control drift)" if flip_global else glob.get("reason")
        docs = [{"id": "global", "halted": halted, "reason": reason, "revision": control.get("revision")}]
        docs += [
            {
                "id": f"scope:{s['scope']}",
                "disabled": bool(s.get("disabled")),
                "reason": s.get("reason"),
                "revision": control.get("revision"),
            }
            for s in control.get("scopes") or []
        ]
        try:
            with self._cosmos_lock:
                container = (
                    self.cosmos.client().get_database_client(COSMOS_DATABASE).get_container_client("trading-control")
                )
                for doc in docs:
                    container.upsert_item(doc)
        except Exception:  # never fail the backend's answer over the mirror
            log.exception("mirroring trading-control into Cosmos failed")

    def _mirror(self, control: dict[str, Any]) -> None:
        if not self.mirror_paused:
            self.write_control(control)

    # -- seeding --------------------------------------------------------------------------------

    def _seed(self) -> None:
        peer, github, backend = self.stack.peer, self.stack.github, self.stack.backend
        for person in people.PEOPLE:
            peer.workspace.add_user(person.user_id, name=person.name)
        peer.workspace.add_channel(people.CHANNEL_ID, name=people.CHANNEL_NAME)
        github.add_deployment(PREVIOUS)
        github.add_deployment(DEPLOYED)
        for sha in (PREVIOUS, DEPLOYED):
            for name in CHECKS:
                github.set_check(sha, name)
        backend.set_version(DEPLOYED)
        github.on_run_completed = self._reverted
        backend.on_control_changed = self._mirror
        self.write_control(backend.control())

    def _reverted(self, inputs: dict[str, str]) -> None:
        """A successful revert run deploys its target, as the real workflow would."""
        target = inputs.get("target_sha") or ""
        if target:
            self.deploy(target)

    # -- changes to GitHub and the deployed version, journaled so a restart replays them ---------

    def deploy(self, sha: str, state: str = "success") -> None:
        """A production deployment; on success the backend reports its sha from now on."""
        self.stack.github.add_deployment(sha, state=state)
        if state == "success":
            self.stack.backend.set_version(sha)
        self._journal(["deploy", sha, state])

    def deploy_new_version(self) -> str:
        """A new backend version, built green (the three CI checks) and deployed to production: what the
        stability rule before broader production waits for. The new sha, in full."""
        sha = secrets.token_hex(20)
        for name in CHECKS:
            self.set_check(sha, name, "success")
        self.deploy(sha)
        return sha

    def set_check(self, sha: str, name: str, conclusion: str | None) -> None:
        self.stack.github.set_check(sha, name, conclusion)
        self._journal(["check", sha, name, conclusion])

    def journal(self) -> list[list[str | None]]:
        with self._journal_lock:
            return [list(entry) for entry in self._entries]

    def replay(self, entries: list[list[str | None]]) -> None:
        for entry in entries:
            if entry[:1] == ["deploy"] and len(entry) == 3:
                self.deploy(str(entry[1]), str(entry[2]))
            elif entry[:1] == ["check"] and len(entry) == 4:
                self.set_check(str(entry[1]), str(entry[2]), entry[3])

    def _journal(self, entry: list[str | None]) -> None:
        with self._journal_lock:
            self._entries.append(entry)
