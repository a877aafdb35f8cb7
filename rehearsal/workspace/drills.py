"""Named faults from the runbook, injected into the stand-ins (never into the bot).

Each drill is what an operator would meet in production: a slow or failing backend, a halt the
backend acknowledges but does not apply (hard rollback trigger 3), platform auth failing (trigger
1), a CI check failing on the deployed commit (go/no-go 1-3), a revert workflow failing, Cosmos
unreachable (go/no-go 5-6), and runtime control drift between backend memory and Cosmos
(post-cutover monitoring, first 24 hours).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from rehearsal.sim.jwks import JWKS_PATH
from rehearsal.sim.stack import Stack
from rehearsal.workspace.audit_drill import AuditTamper
from rehearsal.workspace.kill_switch_drills import KILL_SWITCH_DRILLS, KillSwitchFaults
from rehearsal.workspace.world import LocalWorld

BACKEND_SLOW_S = 1.5  # under the bot's 2 s read timeout: slow, but answering
FAILING_CHECK = "pnpm smoke:release"


@dataclass(frozen=True)
class Drill:
    name: str
    label: str
    about: str
    needs_cosmos: bool = False


DRILLS: tuple[Drill, ...] = (
    Drill("backend-slow", "Backend slow", f"every trading-backend request takes {BACKEND_SLOW_S:g} s"),
    Drill("backend-failing", "Backend failing", "the trading backend answers HTTP 503 to every request"),
    Drill(
        "halt-not-applied",
        "Halt not applied",
        "the backend acknowledges halts and resumes but does not apply them, counting each as a "
        "trading-control update failure (hard rollback trigger 3)",
    ),
    Drill(
        "auth-failing",
        "Platform auth failing",
        "platform-service's JWKS answers HTTP 503, so sign-in tokens cannot be verified and the backend "
        "counts its users' sign-in and token refresh failures (hard rollback trigger 1); the bot's own "
        "service token still works",
    ),
    Drill(
        "ci-check-failing",
        "CI check failing",
        f"`{FAILING_CHECK}` concluded failure on the deployed commit (go/no-go 3)",
    ),
    Drill(
        "rollback-workflow-failing",
        "Rollback workflow fails",
        "the next revert workflow run concludes failure (turns itself off once a run used it)",
    ),
    Drill(
        "cosmos-unreachable",
        "Cosmos unreachable",
        "connections to Cosmos are cut (go/no-go 5 and 6)",
        needs_cosmos=True,
    ),
    Drill(
        "control-drift",
        "Control drift",
        "Cosmos holds a different global halt state than the backend, and backend writes stop reaching Cosmos",
        needs_cosmos=True,
    ),
    *(Drill(name, label, about) for name, label, about in KILL_SWITCH_DRILLS),
    Drill(
        "audit-truncate",
        "Tamper with the audit: truncate",
        "deletes the newest audit events, the last signed action's among them, from the database file, as "
        "someone with access to it could; `opsbot audit verify` (below) names the checkpoint they broke",
    ),
    Drill(
        "audit-rehash",
        "Tamper with the audit: edit and re-hash",
        "rewrites the last signed event's outcome to `not_applied` and recomputes every hash after it, so "
        "the chain is consistent again; `opsbot audit verify` (below) names the checkpoint it contradicts",
    ),
)
AUDIT_DRILLS = {"audit-truncate": "truncate", "audit-rehash": "rehash"}
NAMES = frozenset(d.name for d in DRILLS)


class UnknownDrill(ValueError):
    pass


# -- the drills that live in the stand-ins alone (no Cosmos, nothing to remember) ---------------------


def _backend_slow(stack: Stack, on: bool) -> None:
    stack.backend.faults.latency_s = BACKEND_SLOW_S if on else 0.0


def _backend_failing(stack: Stack, on: bool) -> None:
    faults = stack.backend.faults
    faults.fail_status, faults.fail_times = (503, None) if on else (None, None)


def _halt_not_applied(stack: Stack, on: bool) -> None:
    stack.backend.faults.halt_not_applied = on


def _auth_failing(stack: Stack, on: bool) -> None:
    faults = stack.auth.faults
    faults.fail_status, faults.fail_path = (503, JWKS_PATH) if on else (None, None)
    stack.backend.faults.signins_failing = on  # the backend's users cannot sign in either


STACK_DRILLS: dict[str, Callable[[Stack, bool], None]] = {
    "backend-slow": _backend_slow,
    "backend-failing": _backend_failing,
    "halt-not-applied": _halt_not_applied,
    "auth-failing": _auth_failing,
}


def inject(stack: Stack, name: str, on: bool) -> None:
    """Switch a stand-in drill on `stack`: the workspace's `Drills` and the monitoring tests both
    come through here, so a test exercises what an operator's drill does."""
    backend = stack.backend
    backend.traffic.advance(backend.faults)  # the clients' traffic so far met the faults before the change
    STACK_DRILLS[name](stack, on)


class Drills:
    """The drills' switches over one LocalWorld; thread-safe."""

    def __init__(self, world: LocalWorld) -> None:
        self._world = world
        self._lock = threading.Lock()
        self._on: set[str] = set()
        self._failed_sha: str | None = None
        self._switch: dict[str, Callable[[bool], None]] = {
            **{name: self._stand_in(name) for name in STACK_DRILLS},
            "ci-check-failing": self._ci_check,
            "rollback-workflow-failing": self._workflow,
            "cosmos-unreachable": self._cosmos_unreachable,
            "control-drift": self._drift,
            **{name: self._kill_switch(name) for name, _, _ in KILL_SWITCH_DRILLS},
            **{name: self._audit(kind) for name, kind in AUDIT_DRILLS.items()},
        }
        self._faults: KillSwitchFaults | None = None
        self.audit = AuditTamper(world)

    def unavailable(self, drill: Drill) -> str | None:
        if drill.needs_cosmos and self._world.cosmos is None:
            return f"Cosmos is not running here: {self._world.cosmos_problem}"
        if drill.name in AUDIT_DRILLS:
            other = next((n for n in AUDIT_DRILLS if n != drill.name and n in self._on), None)
            return f"turn off {other} first" if other else self.audit.unavailable()
        return None

    def set(self, name: str, on: bool) -> None:
        drill = next((d for d in DRILLS if d.name == name), None)
        if drill is None:
            raise UnknownDrill(f"no drill named {name!r}; drills: {', '.join(sorted(NAMES))}")
        why = self.unavailable(drill)
        if why is not None and on:
            raise UnknownDrill(f"{drill.label} cannot run: {why}")
        with self._lock:
            self._switch[name](on)
            if on:
                self._on.add(name)
            else:
                self._on.discard(name)

    def is_on(self, name: str) -> bool:
        if name == "rollback-workflow-failing":  # used up by the run it failed
            return self._world.stack.github.faults.fail_next_run
        with self._lock:
            return name in self._on

    def active(self) -> list[str]:
        return [d.name for d in DRILLS if self.is_on(d.name)]

    def saved(self) -> list[str]:
        """The drills a restart switches back on: not the audit's, whose original rows live in memory."""
        return [name for name in self.active() if name not in AUDIT_DRILLS]

    def all_off(self) -> None:
        for name in self.active():
            self.set(name, False)

    def as_json(self) -> list[dict[str, object]]:
        return [
            {
                "name": d.name,
                "label": d.label,
                "about": d.about,
                "on": self.is_on(d.name),
                "unavailable": self.unavailable(d),
            }
            for d in DRILLS
        ]

    # -- the switches (called with the lock held) ------------------------------------------------

    def _stand_in(self, name: str) -> Callable[[bool], None]:
        return lambda on: inject(self._world.stack, name, on)  # the stack exists once the world started

    def _kill_switch(self, name: str) -> Callable[[bool], None]:
        def switch(on: bool) -> None:
            if self._faults is None:  # built on first use: the stack exists once the world started
                self._faults = KillSwitchFaults(self._world.stack)
            self._faults.switch(name, on)

        return switch

    def _ci_check(self, on: bool) -> None:
        github = self._world.stack.github
        if on:
            self._failed_sha = self._world.stack.backend.version
            github.set_check(self._failed_sha, FAILING_CHECK, "failure")
        elif self._failed_sha is not None:
            github.set_check(self._failed_sha, FAILING_CHECK, "success")
            self._failed_sha = None

    def _audit(self, kind: str) -> Callable[[bool], None]:
        def switch(on: bool) -> None:
            try:
                self.audit.set(kind, on)
            except ValueError as exc:
                raise UnknownDrill(str(exc)) from None

        return switch

    def _workflow(self, on: bool) -> None:
        self._world.stack.github.faults.fail_next_run = on

    def _cosmos_unreachable(self, on: bool) -> None:
        if self._world.forwarder is not None:
            self._world.forwarder.set_up(not on)

    def _drift(self, on: bool) -> None:
        world = self._world
        world.mirror_paused = on
        world.write_control(world.stack.backend.control(), flip_global=on)
