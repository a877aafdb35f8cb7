"""The Cosmos control documents (the `trading-control` container) as values, parsed once when read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CosmosGlobal:
    halted: bool
    reason: str | None
    revision: int | None


@dataclass(frozen=True)
class CosmosScope:
    scope: str
    disabled: bool
    reason: str | None
    revision: int | None


@dataclass(frozen=True)
class CosmosControl:
    global_: CosmosGlobal | None  # None: the container holds no `global` document
    scopes: tuple[CosmosScope, ...]

    @property
    def revision(self) -> int | None:
        """The newest revision written to any control document."""
        revisions = [d.revision for d in (self.global_, *self.scopes) if d is not None and d.revision is not None]
        return max(revisions, default=None)

    @classmethod
    def from_documents(cls, items: Iterable[Mapping[str, Any]]) -> CosmosControl:
        """Parse `global` and `scope:<scope>` documents; other ids are ignored; ValueError on a bad shape.

        The global document uses `halted` and scope documents `disabled`; either name is accepted
        on both, since the contract names them together."""
        glob: CosmosGlobal | None = None
        scopes: list[CosmosScope] = []
        for item in items:
            doc_id = item.get("id")
            if doc_id == "global":
                if glob is not None:
                    raise ValueError("more than one 'global' document")
                glob = CosmosGlobal(_flag(item, "halted", "disabled"), _reason(item), _revision(item))
            elif isinstance(doc_id, str) and doc_id.startswith("scope:") and len(doc_id) > len("scope:"):
                scopes.append(
                    CosmosScope(
                        doc_id[len("scope:") :], _flag(item, "disabled", "halted"), _reason(item), _revision(item)
                    )
                )
        return cls(glob, tuple(sorted(scopes, key=lambda s: s.scope)))


def _flag(item: Mapping[str, Any], name: str, alias: str) -> bool:
    value = item.get(name, item.get(alias))
    if not isinstance(value, bool):
        raise ValueError(f"document {item.get('id')!r}: {name} is not a boolean")
    return value


def _reason(item: Mapping[str, Any]) -> str | None:
    value = item.get("reason")
    return value if isinstance(value, str) else None


def _revision(item: Mapping[str, Any]) -> int | None:
    value = item.get("revision")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"document {item.get('id')!r}: revision is not an integer")
    return value
