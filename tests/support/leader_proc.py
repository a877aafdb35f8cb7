"""One bot process for the leader-election test: `python -m tests.support.leader_proc <database url> <replica>`.

Real deps on PostgreSQL, the real monitor and advisory-lock elector; each watcher pass takes a little
longer than usual (50 ms) so that two passes at once could not slip between the samples. Prints
"ready" once the monitor runs; stops cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from bot.bootstrap import build_deps
from bot.monitoring.watcher import Watcher
from bot.settings import Settings
from commands.monitoring import build_monitor, build_watcher


class SlowWatcher(Watcher):
    def tick(self) -> str:
        time.sleep(0.05)
        return super().tick()


def main(database_url: str, replica: str) -> int:
    settings = Settings(
        _env_file=None,
        SLACK_BOT_TOKEN="xoxb-leader-test",
        SLACK_SIGNING_SECRET="leader-test",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        OPSBOT_DATABASE_URL=database_url,
        OPSBOT_REPLICA_ID=replica,
        OPSBOT_MONITOR_INTERVAL_SECONDS=0.2,
        OPSBOT_LEADER_POLL_SECONDS=0.2,
    )
    deps = build_deps(settings)
    made = build_watcher(deps)
    slow = SlowWatcher(
        made.alerts, runbook=made.runbook, settings=made.settings, rollbacks=made.rollbacks, clock=made.clock
    )
    monitor = build_monitor(deps, watcher=slow).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    monitor.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
