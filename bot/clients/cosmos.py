"""The bot's access to Azure Cosmos DB (the runbook's containers): read-mostly, with the data rule built in.

`CosmosReader` only reads: it has no method that writes and keeps its SDK clients private.
`CosmosProber` is the only code that writes, and only documents whose id starts with
`opsbot-probe-`, each deleted again by the probe that created it. Control-plane state
(`global`, `scope:*`) is never written, replaced or deleted: not in a rollback, not ever.

Timeouts are short and explicit and the SDK's retries are cut down, so an unreachable account
fails within about `timeout_s` seconds instead of retrying for minutes.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from azure.core.exceptions import AzureError, ServiceResponseError
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos.documents import ConnectionPolicy
from azure.cosmos.exceptions import CosmosClientTimeoutError, CosmosHttpResponseError

from bot.clients.cosmos_errors import (
    COSMOS_SETTINGS,
    CosmosBadDocument,
    CosmosContainerMissing,
    CosmosError,
    CosmosForbidden,
    CosmosNotConfigured,
    CosmosUnavailable,
)
from bot.clients.cosmos_models import CosmosControl
from bot.settings import RUNBOOK_CONTAINERS, Settings

logger = logging.getLogger("opsbot.cosmos")

# Runbook names; deployments may map them to other container names.
CONTAINERS: Mapping[str, str] = MappingProxyType({name: name for name in RUNBOOK_CONTAINERS})
CONTROL_PLANE = ("dynamic_config", "trading-control")  # release go/no-go item 5
EXECUTION_DATA = ("order", "trade-history", "manual-entry")  # release go/no-go item 6
_CONTROL_QUERY = "SELECT * FROM c WHERE c.id = @global OR STARTSWITH(c.id, @scope)"


class CosmosReader:
    """Reads control documents and container metadata. Holds no method that writes."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        key: str | None,
        database: str | None,
        containers: Mapping[str, str] | None = None,
        timeout_s: float = 3.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        missing = [name for name, value in zip(COSMOS_SETTINGS, (endpoint, key, database), strict=True) if not value]
        if missing or endpoint is None or key is None or database is None:
            raise CosmosNotConfigured(missing)
        if not endpoint.startswith(("https://", "http://")):
            raise CosmosNotConfigured(["COSMOS_ENDPOINT"], "is not an http(s) URL")
        self._endpoint, self._key, self._database = endpoint, key, database
        self._names = MappingProxyType({**CONTAINERS, **(containers or {})})
        self.timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._client: CosmosClient | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def database(self) -> str:
        return self._database

    @property
    def containers(self) -> Mapping[str, str]:
        """Runbook name -> actual container name."""
        return self._names

    def container_name(self, name: str) -> str:
        return self._names.get(name, name)

    def container_exists(self, name: str) -> bool:
        actual = self.container_name(name)
        try:
            with self._translate(actual, "read container", container_level=True):
                self._container(actual).read(timeout=self.timeout_s)
        except CosmosContainerMissing:
            return False
        return True

    def count_sample(self, name: str, limit: int = 10) -> int:
        """How many documents (at most `limit`) one small query returns: proves reads without a scan."""
        actual = self.container_name(name)
        with self._translate(actual, "sample", container_level=True):
            items = self._container(actual).query_items(
                "SELECT TOP @n c.id FROM c",
                parameters=[{"name": "@n", "value": int(limit)}],
                enable_cross_partition_query=True,
                max_item_count=limit,
                timeout=self.timeout_s,
            )
            return len(list(items))

    def read_control_documents(self) -> CosmosControl:
        """The `global` and `scope:*` documents of the trading-control container."""
        actual = self.container_name("trading-control")
        with self._translate(actual, "read control documents", container_level=True):
            items = list(
                self._container(actual).query_items(
                    _CONTROL_QUERY,
                    parameters=[{"name": "@global", "value": "global"}, {"name": "@scope", "value": "scope:"}],
                    enable_cross_partition_query=True,
                    timeout=self.timeout_s,
                )
            )
        try:
            return CosmosControl.from_documents(items)
        except ValueError as exc:
            raise CosmosBadDocument(f"{actual!r}: {exc}", step="parse") from exc

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _container(self, name: str) -> ContainerProxy:
        # Private on purpose: only this module (CosmosProber) may hold a container client.
        return self._connect().get_database_client(self._database).get_container_client(name)

    def _connect(self) -> CosmosClient:
        # Lazy: constructing the client already reads the account, which must not happen at startup.
        with self._lock:
            if self._client is None:
                self._client = CosmosClient(self._endpoint, credential=self._key, **self._client_options())
            return self._client

    def _client_options(self) -> dict[str, Any]:
        # The account read (made while the client is constructed, and on refreshes) has its own
        # 3 s / 6 s timeouts that neither kwargs nor `timeout` shorten; the policy's fields do.
        policy = ConnectionPolicy()
        policy.DBAConnectionTimeout = policy.DBAReadTimeout = policy.RecoveryReadTimeout = math.ceil(self.timeout_s)
        return {
            "connection_policy": policy,
            "connection_timeout": self._connect_timeout_s,
            "read_timeout": self.timeout_s,
            "timeout": self.timeout_s,  # absolute bound per operation, retries included
            "retry_total": 1,
            "retry_connect": 0,
            "retry_read": 0,
            "retry_backoff_max": 1,
            # Only local emulators speak plain HTTP, and they advertise https:// locations that
            # do not exist; a real account is https:// and keeps discovery.
            "enable_endpoint_discovery": not self._endpoint.startswith("http://"),
        }

    @contextmanager
    def _translate(self, container: str, step: str, *, container_level: bool = False) -> Iterator[None]:
        """Turn SDK errors into the bot's typed errors, naming the container and the step."""
        try:
            yield
        except CosmosError:
            raise
        except CosmosHttpResponseError as exc:
            raise _http_error(exc, container, self._database, step, container_level) from exc
        except AzureError as exc:
            timed_out = isinstance(exc, CosmosClientTimeoutError | ServiceResponseError)
            tls = _certificate_problem(exc)
            if tls:
                what = f"its TLS certificate was not accepted ({tls}); check COSMOS_ENDPOINT and the CA bundle"
            elif timed_out:
                what = f"timed out (limit {self.timeout_s:g} s)"
            else:
                what = "unreachable (connection failed)"
            raise CosmosUnavailable(f"{step} on {container!r}: {what}", step=step) from exc


def _certificate_problem(exc: BaseException) -> str:
    """The certificate failure behind an SDK error (self-signed, expired, wrong host), in a few words; ""."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or "verification failed")[:120]
        if "CERTIFICATE_VERIFY_FAILED" in str(current):  # the SDK keeps only the message
            why = str(current).partition("certificate verify failed:")[2].split("(")[0].strip()
            return why[:120] or "certificate verify failed"
        current = current.__cause__ or current.__context__
    return ""


def _http_error(
    exc: CosmosHttpResponseError, container: str, database: str, step: str, container_level: bool
) -> CosmosError:
    status = exc.status_code
    if status == 404 and container_level:
        return CosmosContainerMissing(container, database, step=step)
    if status in (401, 403):
        return CosmosForbidden(
            f"{step} on {container!r}: HTTP {status}, the key is wrong or lacks the permission",
            step=step,
            status=status,
        )
    detail = f"{step} on {container!r}: HTTP {status}"
    if not status or status in (408, 410, 429, 449) or status >= 500:
        return CosmosUnavailable(detail, step=step, status=status)
    return CosmosError(detail, step=step, status=status)


def cosmos_missing(settings: Settings) -> tuple[str, ...]:
    """Which of COSMOS_ENDPOINT, COSMOS_KEY, COSMOS_DATABASE are unset."""
    values = (settings.cosmos_endpoint, settings.cosmos_key, settings.cosmos_database)
    return tuple(name for name, value in zip(COSMOS_SETTINGS, values, strict=True) if value is None)


def build_cosmos(settings: Settings, *, timeout_s: float = 3.0, readonly: bool = False) -> CosmosReader | None:
    """The reader, or None when Cosmos is not (fully) configured; no network I/O happens here.

    `readonly` picks OPSBOT_COSMOS_READONLY_KEY when it is set: then Cosmos itself refuses any write
    made through that reader, whatever the code holding it tries.
    """
    if cosmos_missing(settings) or settings.cosmos_key is None:
        return None
    key = settings.cosmos_readonly_key if readonly and settings.cosmos_readonly_key else settings.cosmos_key
    return CosmosReader(
        endpoint=settings.cosmos_endpoint,
        key=key.get_secret_value(),
        database=settings.cosmos_database,
        containers=settings.cosmos_containers,
        timeout_s=timeout_s,
    )
