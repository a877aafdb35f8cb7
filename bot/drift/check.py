"""The drift line of `/halt status` and `/cutover status`: backend trading-control vs Cosmos documents.

The Cosmos read is bounded in time; when it fails or is late the line says "Drift unknown: …" and
the status is shown anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from bot.clients.backend import TradingControl
from bot.clients.cosmos import CosmosReader, cosmos_missing
from bot.clients.cosmos_errors import CosmosError
from bot.drift.compare import compare, drift_text
from bot.settings import Settings
from bot.text import safe

log = logging.getLogger("opsbot.drift")

DRIFT_TIMEOUT_S = 2.0
UNKNOWN = ":grey_question: *Drift unknown:*"

T = TypeVar("T")


def bounded(call: Callable[[], T], timeout_s: float) -> T:
    """`call()` on its own thread; TimeoutError after `timeout_s` (the thread is left to finish)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbot-bounded")
    try:
        return pool.submit(call).result(timeout=timeout_s)
    except FutureTimeout:
        raise TimeoutError(f"no answer within {timeout_s:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def drift_line(
    cosmos: CosmosReader | None, settings: Settings, control: TradingControl, *, timeout_s: float = DRIFT_TIMEOUT_S
) -> str:
    if cosmos is None:
        missing = ", ".join(cosmos_missing(settings)) or "COSMOS_*"
        return f"{UNKNOWN} Cosmos is not configured ({missing} not set)."
    try:
        documents = bounded(cosmos.read_control_documents, timeout_s)
    except TimeoutError:
        return f"{UNKNOWN} Cosmos did not answer within {timeout_s:g} s."
    except CosmosError as exc:
        return f"{UNKNOWN} {safe(exc.detail, 300)}."
    except Exception as exc:  # an SDK error the reader did not translate: still never block the status
        log.exception("reading Cosmos control documents failed")
        return f"{UNKNOWN} reading Cosmos failed ({type(exc).__name__})."
    return drift_text(compare(control, documents))
