"""Run probes concurrently under ONE deadline: whatever has not answered by then is UNKNOWN.

A hanging probe never delays the result: the pool is shut down without waiting (a `with` block
would join its threads), its thread is left to finish or time out on its own, and its result, if
it ever comes, is ignored. Progress is reported at most every `every_s` seconds, plus once at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from bot.gate.result import ProbeResult, unknown

log = logging.getLogger("opsbot.gate.runner")

Task = Callable[[], ProbeResult]
Progress = Callable[[dict[str, ProbeResult]], None]


def _timed(task: Task) -> ProbeResult:
    started = time.monotonic()
    result = task()
    return result.took((time.monotonic() - started) * 1000)


def _result_of(key: str, future: Future[ProbeResult]) -> ProbeResult:
    exc = future.exception()
    if exc is None:
        return future.result()
    log.error("probe %s crashed: %s", key, type(exc).__name__, exc_info=exc)
    return unknown(f"the probe crashed ({type(exc).__name__}); see the bot's log")


def _report(progress: Progress | None, results: dict[str, ProbeResult]) -> None:
    if progress is None:
        return
    try:
        progress(dict(results))
    except Exception:  # a failed Slack update must not stop the evaluation
        log.exception("progress report failed")


def run_all(
    tasks: Mapping[str, Task],
    *,
    deadline_s: float,
    progress: Progress | None = None,
    every_s: float = 0.5,
    started: float | None = None,
) -> dict[str, ProbeResult]:
    """Every task's result, keyed like `tasks`; `started` (monotonic) lets the caller's clock start earlier."""
    deadline = (time.monotonic() if started is None else started) + deadline_s
    pool = ThreadPoolExecutor(max_workers=max(1, len(tasks)), thread_name_prefix="opsbot-probe")
    futures = {pool.submit(_timed, task): key for key, task in tasks.items()}
    results: dict[str, ProbeResult] = {}
    try:
        pending, dirty, reported = set(futures), False, time.monotonic()
        while pending and (left := deadline - time.monotonic()) > 0:
            timeout = min(left, max(0.0, reported + every_s - time.monotonic())) if dirty else left
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = _result_of(futures[future], future)
            dirty = dirty or bool(done)
            if dirty and pending and time.monotonic() - reported >= every_s:
                _report(progress, results)
                dirty, reported = False, time.monotonic()
        for future in pending:
            log.warning("probe %s missed the %.3g s deadline", futures[future], deadline_s)
            results[futures[future]] = unknown(
                f"timed out after {deadline_s:g} s (the gate's deadline)", elapsed_ms=deadline_s * 1000
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {key: results[key] for key in tasks}
