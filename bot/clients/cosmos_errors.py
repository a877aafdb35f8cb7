"""Typed errors of the Cosmos client; `detail` is plain text naming what failed."""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import OpsbotError
from bot.text import safe

COSMOS_SETTINGS = ("COSMOS_ENDPOINT", "COSMOS_KEY", "COSMOS_DATABASE")


class CosmosError(OpsbotError):
    """A Cosmos check did not give a usable answer; `detail` is plain text naming what failed."""

    def __init__(self, detail: str, *, step: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.step = step
        self.status = status

    def operator_text(self) -> str:
        return f":file_cabinet: Cosmos: {safe(self.detail, 300)}"


class CosmosNotConfigured(CosmosError):
    def __init__(self, missing: Sequence[str] = COSMOS_SETTINGS, problem: str = "not set") -> None:
        super().__init__(f"Cosmos is not configured ({', '.join(missing)} {problem})")
        self.missing = tuple(missing)


class CosmosUnavailable(CosmosError):
    """Unreachable, timed out, throttled or a 5xx: trying again later may work."""


class CosmosForbidden(CosmosError):
    """401/403: the key is wrong or lacks the permission."""


class CosmosContainerMissing(CosmosError):
    def __init__(self, container: str, database: str, *, step: str | None = None) -> None:
        super().__init__(f"container {container!r} not found in database {database!r}", step=step, status=404)
        self.container = container
        self.database = database


class CosmosBadDocument(CosmosError):
    """A control document does not have the contract's shape."""
