"""The gate's write probe: a document of the bot's own written, read back and deleted in one container,
each step timed; nothing else in the container is touched."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError

from bot.clients.cosmos import CosmosReader
from bot.clients.cosmos_errors import CosmosError, CosmosNotConfigured

logger = logging.getLogger("opsbot.cosmos")


PROBE_PREFIX = "opsbot-probe-"


PROBE_TTL_S = 300  # if a delete is lost, containers with TTL enabled drop the probe by themselves


@dataclass(frozen=True)
class ProbeStep:
    name: str  # "read", "create", "read-back", "delete"
    elapsed_ms: float


@dataclass(frozen=True)
class ProbeResult:
    container: str  # the container's actual name
    probe_id: str
    sampled: int  # documents the read step saw (0 or 1)
    steps: tuple[ProbeStep, ...]

    @property
    def total_ms(self) -> float:
        return sum(step.elapsed_ms for step in self.steps)


class CosmosProber:
    """Proves a container readable and writable with a throwaway document (go/no-go items 5 and 6)."""

    def __init__(self, reader: CosmosReader | None) -> None:
        self._reader = reader

    def probe(self, container: str) -> ProbeResult:
        reader = self._reader
        if reader is None:
            raise CosmosNotConfigured()
        name, timeout = reader.container_name(container), reader.timeout_s
        steps: list[ProbeStep] = []
        with _timed(steps, "read"), reader._translate(name, "read", container_level=True):
            proxy = reader._container(name)
            properties = proxy.read(timeout=timeout)
            sampled = len(
                list(
                    proxy.query_items(
                        "SELECT TOP 1 c.id FROM c", enable_cross_partition_query=True, max_item_count=1, timeout=timeout
                    )
                )
            )
        doc, partition_key = _probe_document(f"{PROBE_PREFIX}{uuid.uuid4()}", properties)
        self._write_read_delete(reader, proxy, doc, partition_key, steps)
        return ProbeResult(name, doc["id"], sampled, tuple(steps))

    @staticmethod
    def _write_read_delete(
        reader: CosmosReader, proxy: ContainerProxy, doc: dict[str, Any], partition_key: Any, steps: list[ProbeStep]
    ) -> None:
        name, probe_id, timeout = proxy.id, doc["id"], reader.timeout_s
        deleted = False
        try:
            with _timed(steps, "create"), reader._translate(name, "create"):
                _create_probe(proxy, doc, timeout)
            with _timed(steps, "read-back"), reader._translate(name, "read-back"):
                if proxy.read_item(probe_id, partition_key, timeout=timeout).get("id") != probe_id:
                    raise CosmosError(f"read-back on {name!r} returned another document", step="read-back")
            with _timed(steps, "delete"), reader._translate(name, "delete"):
                _delete_probe(proxy, probe_id, partition_key, timeout)
            deleted = True
        finally:
            if not deleted:  # also after a timed-out create, which may have been applied
                _cleanup(proxy, probe_id, partition_key, timeout)


def _require_probe_id(doc_id: Any) -> str:
    """The write guard: every write this module makes goes through it."""
    if not isinstance(doc_id, str) or not doc_id.startswith(PROBE_PREFIX) or doc_id == PROBE_PREFIX:
        raise ValueError(f"refusing to write document {doc_id!r}: the bot writes only {PROBE_PREFIX}* documents")
    return doc_id


def _create_probe(proxy: ContainerProxy, doc: dict[str, Any], timeout: float) -> None:
    _require_probe_id(doc.get("id"))
    proxy.create_item(doc, timeout=timeout)  # create, never upsert: an existing document is never replaced


def _delete_probe(proxy: ContainerProxy, doc_id: str, partition_key: Any, timeout: float) -> None:
    proxy.delete_item(_require_probe_id(doc_id), partition_key=partition_key, timeout=timeout)


def _cleanup(proxy: ContainerProxy, doc_id: str, partition_key: Any, timeout: float) -> None:
    try:
        _delete_probe(proxy, doc_id, partition_key, timeout)
    except CosmosHttpResponseError as exc:
        if exc.status_code != 404:  # 404: the create never happened
            logger.error("probe document %s left in %s (delete failed: HTTP %s)", doc_id, proxy.id, exc.status_code)
    except AzureError as exc:
        logger.error("probe document %s left in %s (delete failed: %s)", doc_id, proxy.id, type(exc).__name__)


def _probe_document(probe_id: str, properties: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The probe document, with the probe id at every partition key path, and its partition key value."""
    paths = (properties.get("partitionKey") or {}).get("paths") or []
    if not paths:
        raise CosmosError(f"container {properties.get('id')!r} has no partition key definition", step="read")
    doc: dict[str, Any] = {
        "id": _require_probe_id(probe_id),
        "kind": "opsbot-probe",
        "ttl": PROBE_TTL_S,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for path in paths:
        *parents, leaf = [segment.strip('"') for segment in str(path).strip("/").split("/")]
        node = doc
        for segment in parents:
            node = node.setdefault(segment, {})
        node[leaf] = probe_id
    return doc, probe_id if len(paths) == 1 else [probe_id] * len(paths)


@contextmanager
def _timed(steps: list[ProbeStep], name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    steps.append(ProbeStep(name, (time.monotonic() - started) * 1000))
