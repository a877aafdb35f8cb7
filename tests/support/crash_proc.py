"""One bot process for the crash tests: `python -m tests.support.crash_proc <stop-at>`, settings from the environment.

Built like `opsbot serve` (deps, app, notifier, sweeper, HTTP), with quick sweeps. `<stop-at>` makes a
halt's execution stop dead at one point so the test can kill -9 the process there: `claim` (claimed,
before the backend call), `record` (the backend answered, before the outcome is recorded) or `none`.
Prints the URL it serves once ready; stops cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta
from typing import Any

from bot.approvals.actions import ExecutionContext, Outcome
from bot.bootstrap import Sweeper, build_deps, start_notifier
from bot.settings import Settings
from commands.server.app import build_app
from commands.server.web import Router
from commands.webapi.notifier import NotifierConfig
from rehearsal.sim.stack import HttpServer

FOREVER = threading.Event()


def stop_at(deps: Any, where: str) -> None:
    spec = deps.actions["halt"]
    run = spec.execute

    def execute(ctx: ExecutionContext) -> Outcome:
        if where == "claim":
            print("claimed", flush=True)
            FOREVER.wait()
        outcome: Outcome = run(ctx)
        if where == "record":
            print("ran", flush=True)
            FOREVER.wait()
        return outcome

    setattr(spec, "execute", execute)  # noqa: B010 (an instance attribute shadows the method)


def main(where: str) -> int:
    deps = build_deps(Settings(_env_file=None))
    app = build_app(deps)
    stop_at(deps, where)
    notifier = start_notifier(
        deps, NotifierConfig(idle_poll_s=0.1, first_retry=timedelta(seconds=0.2), claim_lease=timedelta(seconds=5))
    )
    sweeper = Sweeper(deps, interval=0.5).start()
    server = HttpServer(Router(app, deps), threads=8).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    sweeper.stop()
    notifier.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
