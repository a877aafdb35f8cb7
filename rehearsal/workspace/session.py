"""One running local workspace: the world, its drills and scenarios, the channel, and saving all of it.

What the page asks for goes through here; `state(user)` is the whole page in one JSON document.
Every `SAVE_EVERY_S` seconds the stand-ins' state is written beside the database (rehearsal.workspace.state)
when it changed, and once more on stop, so a restart picks up where the rehearsal stopped.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from rehearsal.workspace import people
from rehearsal.workspace.audit_drill import verify_lines
from rehearsal.workspace.channel import COMMANDS, Channel, Refused
from rehearsal.workspace.drills import Drills, UnknownDrill
from rehearsal.workspace.scenario_runner import ScenarioRunner, load_all
from rehearsal.workspace.state import StatePaths, load, save
from rehearsal.workspace.world import REHEARSAL_SOAK_SECONDS, LocalWorld

log = logging.getLogger("opsbot.workspace")

SAVE_EVERY_S = 2.0
FORMAT = 1


class Session:
    def __init__(
        self,
        paths: StatePaths,
        *,
        use_cosmos: bool = True,
        use_prometheus: bool = True,
        soak_seconds: float = REHEARSAL_SOAK_SECONDS,
    ) -> None:
        self.paths = paths
        self.world = LocalWorld(paths, use_cosmos=use_cosmos, use_prometheus=use_prometheus, soak_seconds=soak_seconds)
        self.drills: Drills
        self.scenarios: ScenarioRunner
        self.channel: Channel
        self._stop = threading.Event()
        self._saver = threading.Thread(target=self._save_loop, name="workspace-saver", daemon=True)
        self._saved = ""

    def start(self) -> Session:
        self.world.start()
        self.drills = Drills(self.world)
        self.scenarios = ScenarioRunner(self.world, self.drills, load_all())
        self.channel = Channel(self.world.stack)
        self._restore(load(self.paths))
        self._saver.start()
        return self

    def stop(self) -> None:
        self.scenarios.stop()
        self._stop.set()
        if self._saver.is_alive():
            self._saver.join(timeout=5)
        self._save_if_changed()
        self.world.stop()

    @property
    def bot_url(self) -> str:
        return self.world.stack.server.url

    # -- the page's view ------------------------------------------------------------------------

    def state(self, user: str) -> dict[str, Any]:
        backend = self.world.stack.backend
        control = backend.control()
        scenarios = self.scenarios.scenarios
        messages = self.channel.messages(user)
        return {
            "channel": {"id": self.channel.channel, "name": people.CHANNEL_NAME},
            "bot": {"id": self.world.stack.peer.bot_user_id, "name": "opsbot"},
            "people": people.as_json(),
            "me": user,
            "messages": messages,
            "commands": [{"command": c, "hint": hint, "description": about} for c, (hint, about) in COMMANDS.items()],
            "drills": self.drills.as_json(),
            "scenarios": [
                {"id": s.id, "name": s.name, "description": s.description, "try": list(s.try_)}
                for s in scenarios.values()
            ],
            "scenario": self.scenarios.status(),
            "home": self.world.stack.peer.workspace.home_view(user),  # the App Home as published for `user`
            "world": {
                "backend": {
                    "version": backend.version[:12],
                    "health": backend.health_status,
                    "global_halted": bool(control["global"]["halted"]),
                    "disabled_scopes": [s["scope"] for s in control["scopes"] if s.get("disabled")],
                    "revision": control["revision"],
                },
                "cosmos": {"running": self.world.cosmos is not None, "why": self.world.cosmos_problem},
                "prometheus": {"running": self.world.prometheus is not None, "why": self.world.prometheus_problem},
                "state": self.paths.describe(),
                "audit": verify_lines(self.world, [m for m in messages if not m.get("ephemeral")]),
            },
        }

    def set_drill(self, name: str, on: bool) -> None:
        self.drills.set(name, on)

    def open_home(self, user: str) -> None:
        """The person opened the bot's App Home: Slack sends app_home_opened; the bot publishes it."""
        _known(user)
        self.world.stack.sender.event(
            {"type": "app_home_opened", "user": user, "tab": "home", "channel": "D" + user[1:]}
        )

    def file(self, file_id: str) -> tuple[str, bytes] | None:
        """A file shared in the workspace's channel (e.g. an alert's chart): (name, bytes); None when
        there is none, it was shared elsewhere, or its bytes are gone (files are not kept across restarts)."""
        stored = self.world.stack.peer.files.get(file_id)
        if stored is None or stored.data is None or self.channel.channel not in stored.channels:
            return None
        return stored.filename, stored.data

    def home_click(self, user: str, *, action_id: str, value: str) -> None:
        """A button on the published home: sent as Slack sends a click in a view (no response_url)."""
        _known(user)
        view = self.world.stack.peer.workspace.home_view(user) or {}
        block_id = next(
            (
                str(b.get("block_id") or "")
                for b in view.get("blocks") or []
                for e in b.get("elements") or []
                if isinstance(e, dict) and e.get("action_id") == action_id and e.get("value") == value
            ),
            None,
        )
        if block_id is None:
            raise Refused("no such button on your App Home")
        self.world.stack.sender.view_click(user=user, action_id=action_id, value=value, block_id=block_id, view=view)

    # -- saving and restoring -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        backend = self.world.stack.backend
        return {
            "format": FORMAT,
            "slack": self.world.stack.peer.workspace.snapshot(),
            "echoes": self.channel.echoes(),
            "backend": {"control": backend.control(), "health": backend.health_status},
            "journal": self.world.journal(),
            "drills": self.drills.saved(),
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        if saved.get("format") != FORMAT:
            return
        self.world.stack.peer.workspace.restore(saved.get("slack") or {})
        self.channel.restore_echoes(list(saved.get("echoes") or []))
        backend = self.world.stack.backend
        control = (saved.get("backend") or {}).get("control")
        if isinstance(control, dict) and {"global", "scopes", "maintenance", "revision"} <= control.keys():
            backend.restore_control(control)
            self.world.write_control(control)
        backend.set_health_status(str((saved.get("backend") or {}).get("health") or "ok"))
        self.world.replay(list(saved.get("journal") or []))
        for name in saved.get("drills") or []:
            try:
                self.drills.set(str(name), True)
            except UnknownDrill as exc:  # e.g. a Cosmos drill on a machine without Node
                log.warning("drill not restored: %s", exc)

    def _save_loop(self) -> None:
        while not self._stop.wait(SAVE_EVERY_S):
            try:
                self._save_if_changed()
            except Exception:
                log.exception("saving the workspace failed; will try again")

    def _save_if_changed(self) -> None:
        snapshot = self.snapshot()
        encoded = json.dumps(snapshot, sort_keys=True)
        if encoded != self._saved:
            save(self.paths, snapshot)
            self._saved = encoded


def _known(user: str) -> None:
    if people.person(user) is None:
        raise Refused(f"{user!r} is not one of this workspace's people")
