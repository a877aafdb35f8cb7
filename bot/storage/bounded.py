"""A psycopg connection whose every wait on the server is bounded on the client side.

PostgreSQL's statement_timeout and lock_timeout are enforced by the server; a server that is stopped
(SIGSTOP), swapped out or cut off by the network never enforces them, and a plain psycopg call then
blocks for ever. Here a wait longer than PG_CLIENT_WAIT_S closes the connection and raises
OperationalError, which the engine treats as a lost connection and callers see as StoreUnavailable.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors

RV = TypeVar("RV")
# A SIGSTOPped or partitioned server never answers, so its own timeouts cannot fire: the client gives up.
PG_CLIENT_WAIT_S = 2.0


class BoundedConnection(psycopg.Connection[Any]):
    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval=interval, timeout=timeout if timeout is not None else PG_CLIENT_WAIT_S)
        except errors._WaitTimeout as exc:
            self.pgconn.finish()  # its state is unknown: never hand it back to the pool
            raise psycopg.OperationalError(f"the store did not answer within {PG_CLIENT_WAIT_S} s") from exc
