"""bot.clients.cosmos against a real Cosmos protocol server (rehearsal/sim/cosmos.py), and bot.drift.compare."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy

from bot.clients import cosmos, cosmos_probe
from bot.clients.backend import TradingControl
from bot.clients.cosmos import CosmosReader, build_cosmos
from bot.clients.cosmos_errors import (
    COSMOS_SETTINGS,
    CosmosBadDocument,
    CosmosContainerMissing,
    CosmosForbidden,
    CosmosNotConfigured,
    CosmosUnavailable,
)
from bot.clients.cosmos_models import CosmosControl, CosmosGlobal, CosmosScope
from bot.clients.cosmos_probe import CosmosProber
from bot.drift.compare import compare, drift_text, has_drift
from bot.settings import Settings
from rehearsal.sim.cosmos import EMULATOR_KEY, CosmosServer

# Registers the `cosmos_server` fixture whether or not conftest.py imports it too (one server either way).

CONTAINERS = {
    "dynamic_config": "/id",
    "trading-control": "/id",
    "order": "/tenantId",
    "trade-history": "/accountId",
    "manual-entry": "/tenantId",
}
CONTROL_DOCS = [
    {"id": "global", "halted": True, "reason": "fat finger", "revision": 7, "updated_by": "UHALTA"},
    {"id": "scope:tenant:acme", "disabled": True, "reason": "tenant leak", "revision": 6},
    {"id": "scope:symbol:AAPL", "disabled": False, "reason": None, "revision": 5},
    {"id": "feature:unrelated", "enabled": True},
]
DOCS = {
    "trading-control": CONTROL_DOCS,
    "dynamic_config": [{"id": "risk", "values": {"max_notional": 250000}, "revision": 42}],
    "order": [{"id": f"o{i}", "tenantId": "acme", "qty": i} for i in range(3)],
    "trade-history": [{"id": "t1", "accountId": "acme-1", "px": 101.5}],
    "manual-entry": [],
}


@pytest.fixture
def database(cosmos_server: CosmosServer) -> str:
    """A fresh database per test, seeded like the runbook's account."""
    name = f"opsbot-{uuid.uuid4().hex[:8]}"
    cosmos_server.seed(name, CONTAINERS, DOCS)
    return name


def reader_for(server: CosmosServer, database: str, **kwargs: Any) -> CosmosReader:
    return CosmosReader(endpoint=server.endpoint, key=server.key, database=database, **kwargs)


def snapshot(server: CosmosServer, database: str) -> dict[str, list[dict[str, Any]]]:
    """Every document of every container, metadata (_etag, _ts) included, so any write shows."""
    db = server.client().get_database_client(database)
    return {
        c["id"]: sorted(db.get_container_client(c["id"]).read_all_items(), key=lambda d: d["id"])
        for c in db.list_containers()
    }


def test_probes_succeed_leave_no_trace_and_touch_nothing_else(cosmos_server: CosmosServer, database: str) -> None:
    before = snapshot(cosmos_server, database)
    prober = CosmosProber(reader_for(cosmos_server, database))
    for name in CONTAINERS:
        result = prober.probe(name)
        assert result.container == name
        assert result.probe_id.startswith("opsbot-probe-")
        assert [s.name for s in result.steps] == ["read", "create", "read-back", "delete"]
        assert all(s.elapsed_ms >= 0 for s in result.steps) and result.total_ms > 0
        assert result.sampled == (0 if name == "manual-entry" else 1)
    assert snapshot(cosmos_server, database) == before


def test_container_names_are_configurable(cosmos_server: CosmosServer) -> None:
    database = f"opsbot-{uuid.uuid4().hex[:8]}"
    cosmos_server.seed(database, {"orders-v2": "/tenantId"}, {"orders-v2": [{"id": "o1", "tenantId": "a"}]})
    reader = reader_for(cosmos_server, database, containers={"order": "orders-v2"})
    assert CosmosProber(reader).probe("order").container == "orders-v2"
    assert reader.container_exists("order") and not reader.container_exists("trade-history")
    assert reader.count_sample("order") == 1


def test_missing_container_is_named(cosmos_server: CosmosServer, database: str) -> None:
    with pytest.raises(CosmosContainerMissing) as caught:
        CosmosProber(reader_for(cosmos_server, database)).probe("fills")
    assert caught.value.container == "fills" and "'fills'" in caught.value.detail
    assert caught.value.step == "read"


def test_read_control_documents_parses_global_and_scopes(cosmos_server: CosmosServer, database: str) -> None:
    before = snapshot(cosmos_server, database)
    control = reader_for(cosmos_server, database).read_control_documents()
    assert control.global_ == CosmosGlobal(halted=True, reason="fat finger", revision=7)
    assert control.scopes == (
        CosmosScope("symbol:AAPL", False, None, 5),
        CosmosScope("tenant:acme", True, "tenant leak", 6),
    )
    assert control.revision == 7
    assert snapshot(cosmos_server, database) == before


def test_malformed_control_document_is_a_typed_error(cosmos_server: CosmosServer) -> None:
    database = f"opsbot-{uuid.uuid4().hex[:8]}"
    cosmos_server.seed(database, {"trading-control": "/id"}, {"trading-control": [{"id": "global", "halted": "yes"}]})
    with pytest.raises(CosmosBadDocument, match="halted is not a boolean"):
        reader_for(cosmos_server, database).read_control_documents()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_cosmos_fails_fast() -> None:
    reader = CosmosReader(endpoint=f"http://127.0.0.1:{closed_port()}/", key=EMULATOR_KEY, database="db")
    started = time.monotonic()
    with pytest.raises(CosmosUnavailable, match="unreachable"):
        CosmosProber(reader).probe("order")
    with pytest.raises(CosmosUnavailable):
        reader.read_control_documents()
    assert time.monotonic() - started < 3


def test_silent_cosmos_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        reader = CosmosReader(endpoint=f"http://127.0.0.1:{port}/", key=EMULATOR_KEY, database="db", timeout_s=1)
        started = time.monotonic()
        with pytest.raises(CosmosUnavailable, match="timed out"):
            CosmosProber(reader).probe("order")
        assert time.monotonic() - started < 3


@contextmanager
def fake_cosmos(answer: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, Any]]]) -> Iterator[str]:
    """A loopback HTTP server whose every answer comes from `answer(request)`."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, doc = answer(self)
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_forbidden() -> None:
    forbid = fake_cosmos(lambda _: (403, {"code": "Forbidden", "message": "no permission"}))
    with forbid as endpoint, pytest.raises(CosmosForbidden) as caught:
        CosmosProber(CosmosReader(endpoint=endpoint, key=EMULATOR_KEY, database="db")).probe("order")
    assert caught.value.status == 403


def test_slow_operations_time_out() -> None:
    """The account answers, then every operation hangs: each call fails at its own timeout."""
    release = threading.Event()

    def answer(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        if request.path == "/":
            return 200, {
                "id": "local",
                "writableLocations": [],
                "readableLocations": [],
                "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            }
        release.wait(10)
        return 503, {"code": "ServiceUnavailable", "message": "late"}

    with fake_cosmos(answer) as endpoint:
        reader = CosmosReader(endpoint=endpoint, key=EMULATOR_KEY, database="db", timeout_s=1)
        for call in (lambda: CosmosProber(reader).probe("order"), reader.read_control_documents):
            started = time.monotonic()
            with pytest.raises(CosmosUnavailable, match="timed out"):
                call()
            assert time.monotonic() - started < 2.5
        release.set()


def test_not_configured() -> None:
    with pytest.raises(CosmosNotConfigured) as caught:
        CosmosReader(endpoint="https://acct.documents.azure.com:443/", key=None, database="")
    assert caught.value.missing == ("COSMOS_KEY", "COSMOS_DATABASE")
    assert "not configured" in caught.value.detail
    with pytest.raises(CosmosNotConfigured):
        CosmosProber(None).probe("order")
    empty = Settings(_env_file=None, COSMOS_ENDPOINT="", COSMOS_KEY="", COSMOS_DATABASE="")
    assert build_cosmos(empty) is None and cosmos.cosmos_missing(empty) == COSMOS_SETTINGS


def test_build_cosmos_from_settings(cosmos_server: CosmosServer, database: str) -> None:
    settings = Settings(
        _env_file=None, COSMOS_ENDPOINT=cosmos_server.endpoint, COSMOS_KEY=cosmos_server.key, COSMOS_DATABASE=database
    )
    reader = build_cosmos(settings)
    assert reader is not None and reader.database == database
    assert reader.read_control_documents().global_ is not None
    reader.close()


def test_reader_cannot_write(cosmos_server: CosmosServer, database: str) -> None:
    verbs = ("create", "upsert", "replace", "delete", "patch", "write", "execute", "batch")
    public = [name for name in dir(CosmosReader) if not name.startswith("_")]
    assert public and not [name for name in public if any(v in name.lower() for v in verbs)]
    reader = reader_for(cosmos_server, database)
    assert reader.container_exists("order")  # the SDK client now exists; it must stay private
    for name in dir(reader):
        if not name.startswith("_"):
            value = getattr(reader, name)
            assert not isinstance(value, CosmosClient | DatabaseProxy | ContainerProxy), name


def test_probe_document_sets_every_partition_key_path() -> None:
    # The local server cannot read back nested keys, so nested and hierarchical keys are checked here.
    doc, key = cosmos_probe._probe_document("opsbot-probe-1", {"partitionKey": {"paths": ["/meta/tenant"]}})
    assert doc["meta"] == {"tenant": "opsbot-probe-1"} and key == "opsbot-probe-1"
    doc, key = cosmos_probe._probe_document("opsbot-probe-2", {"partitionKey": {"paths": ["/tenantId", "/userId"]}})
    assert doc["tenantId"] == doc["userId"] == "opsbot-probe-2" and key == ["opsbot-probe-2"] * 2
    with pytest.raises(ValueError, match="refusing to write"):
        cosmos_probe._probe_document("global", {"partitionKey": {"paths": ["/id"]}})


def test_write_guard_refuses_non_probe_ids() -> None:
    proxy = MagicMock(spec=ContainerProxy)
    for doc_id in ("global", "scope:tenant:acme", "opsbot-probe-", "x-opsbot-probe-1", None):
        with pytest.raises(ValueError, match="refusing to write"):
            cosmos_probe._create_probe(proxy, {"id": doc_id}, 1.0)
        with pytest.raises(ValueError, match="refusing to write"):
            cosmos_probe._delete_probe(proxy, doc_id, doc_id, 1.0)  # type: ignore[arg-type]
    proxy.create_item.assert_not_called()
    proxy.delete_item.assert_not_called()


def backend_control(
    *, halted: bool = False, scopes: tuple[tuple[str, bool], ...] = (), revision: int = 7
) -> TradingControl:
    return TradingControl.from_json(
        {
            "global": {"halted": halted, "reason": None, "updated_at": None, "updated_by": None},
            "scopes": [{"scope": s, "disabled": d, "reason": None, "updated_at": None} for s, d in scopes],
            "maintenance": {"enabled": False, "message": None},
            "revision": revision,
        }
    )


def cosmos_control(
    *, halted: bool | None = False, scopes: tuple[tuple[str, bool], ...] = (), revision: int = 7
) -> CosmosControl:
    glob = None if halted is None else CosmosGlobal(halted, None, revision)
    return CosmosControl(glob, tuple(CosmosScope(s, d, None, revision) for s, d in scopes))


def test_agreement_is_no_drift() -> None:
    drifts = compare(
        backend_control(scopes=(("tenant:acme", True), ("symbol:AAPL", False))),
        cosmos_control(scopes=(("tenant:acme", True),)),
    )  # absent == not disabled
    assert drifts == [] and not has_drift(drifts)
    assert "No runtime control drift between backend memory and Cosmos control state" in drift_text(drifts)


def test_backend_halted_cosmos_not() -> None:
    drifts = compare(backend_control(halted=True), cosmos_control(halted=False))
    assert [(d.subject, d.backend, d.cosmos, d.informational) for d in drifts] == [
        ("global", "halted", "not halted", False)
    ]
    text = drift_text(drifts)
    assert "untime control drift between backend memory and Cosmos control state" in text and "global" in text


def test_scope_disabled_only_in_cosmos() -> None:
    drifts = compare(backend_control(), cosmos_control(scopes=(("strategy:mm-1", True),)))
    assert [(d.subject, d.backend, d.cosmos) for d in drifts] == [("strategy:mm-1", "enabled (no entry)", "disabled")]
    assert has_drift(drifts)


def test_revision_mismatch_and_missing_global_are_informational() -> None:
    drifts = compare(backend_control(revision=9), cosmos_control(revision=8))
    assert [(d.subject, d.informational) for d in drifts] == [("revision", True)] and not has_drift(drifts)
    assert "Informational" in drift_text(drifts)
    assert compare(backend_control(), cosmos_control(halted=None))[0].informational
    assert not compare(backend_control(halted=True), cosmos_control(halted=None))[0].informational


def test_drift_text_escapes() -> None:
    hostile = "tenant:<!channel>&<@U1>"
    text = drift_text(compare(backend_control(), cosmos_control(scopes=((hostile, True),))))
    assert "<!channel>" not in text and "<@U1>" not in text
    assert "tenant:&lt;!channel&gt;&amp;&lt;@U1&gt;" in text


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate no CA vouches for, as an endpoint behind a misconfigured proxy would present."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_a_certificate_failure_is_reported_as_such(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))  # not localhost/127.0.0.1, for which the SDK skips verification (emulator)
        listener.listen(8)
        port = listener.getsockname()[1]

        def handshake() -> None:  # present the certificate to every attempt; the client refuses it
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                    pass

        threading.Thread(target=handshake, daemon=True).start()
        reader = CosmosReader(endpoint=f"https://127.0.0.2:{port}/", key=EMULATOR_KEY, database="db", timeout_s=2)
        with pytest.raises(CosmosUnavailable) as raised:
            reader.read_control_documents()
    said = str(raised.value)
    assert "TLS certificate was not accepted (self-signed certificate)" in said and "connection failed" not in said
