"""The rollback sequence: the runbook's five actions in order, one progress message updated as each
step finishes, every step's state kept in the `rollback` table.

    1 stop-rollout     freeze the cutover (FreezeStore) and announce it
    2 revert           dispatch OPSBOT_ROLLBACK_WORKFLOW and follow its run (bot.rollback.revert)
    3 restore          GET /api/health reports the target on every surface, within a bound
    4 halt authority   GET /api/trading-control answers and /halt is available: checked before every
                       other step and once more as its own step
    5 evidence         the incident bundle (bot.rollback.evidence), its SHA-256 in the audit log

The first failure stops the sequence: the step is marked failed with why and what to do next, the
rest are marked not run, the freeze stays, and nothing is retried. After step 5 the rollback is
closed and the freezes of it and of any earlier failed rollback are lifted.

Data rule: the runner's only Cosmos handle is a `CosmosReader`, which has no method that writes.
Nothing here shares a lock with /halt: a halt is approved and executed while a rollback runs.
"""

from __future__ import annotations

import threading
import time

from bot.rollback.models import Rollback
from bot.rollback.parts import RunnerConfig, RunnerParts
from bot.rollback.sequence import RollbackRun

__all__ = ["RollbackRunner", "RunnerConfig", "RunnerParts"]


class RollbackRunner:
    def __init__(self, parts: RunnerParts, config: RunnerConfig) -> None:
        self.parts, self.config = parts, config
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def launch(self, row: Rollback) -> threading.Thread:
        """Post the progress message, then run the sequence on its own thread."""
        run = RollbackRun(self.parts, self.config, row, wait=self.wait, trigger_name=self.trigger_name)
        run.post_progress()
        thread = threading.Thread(target=run.run, name=f"opsbot-{row.id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def wait(self, seconds: float) -> bool:
        return self._stopping.wait(seconds)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following runs and waiting for versions (the running step fails as interrupted); join."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def busy(self) -> bool:
        """A sequence thread of this process is still going (its endings may still be posting)."""
        return any(t.is_alive() for t in self._threads)

    def trigger_name(self, trigger: str) -> str:
        return self.parts.runbook.trigger(trigger).name if trigger else "none named"
