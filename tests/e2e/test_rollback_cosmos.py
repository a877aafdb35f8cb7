"""The data rule in code: a whole rollback against a real Cosmos protocol server (rehearsal/sim/cosmos.py),
behind a recording proxy that sees every HTTP request the bot makes to Cosmos. The rollback reads
the control documents into its incident bundle and makes no write call; and the rollback code can
only ever hold a CosmosReader."""

from __future__ import annotations

import ast
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_type_hints

import httpx

from bot.clients.cosmos import CosmosReader
from bot.clients.cosmos_probe import CosmosProber
from bot.rollback.models import RollbackStatus
from bot.rollback.parts import RunnerParts
from rehearsal.sim.cosmos import CosmosServer
from tests.support.common import OWNER, click
from tests.support.rollback import bundle_lines, finished, request, running_stack, spec

pytest_plugins = ["tests.support.cosmos_fixture"]  # the session's `cosmos_server`

REPO = Path(__file__).resolve().parents[2]
ROLLBACK_SOURCES = [
    *sorted((REPO / "bot" / "rollback").glob("*.py")),
    *sorted((REPO / "commands").glob("rollback*.py")),
]
CONTAINERS = {
    "dynamic_config": "/id",
    "trading-control": "/id",
    "order": "/tenantId",
    "trade-history": "/accountId",
    "manual-entry": "/tenantId",
}
CONTROL = [
    {"id": "global", "halted": False, "reason": None, "revision": 9},
    {"id": "scope:tenant:acme", "disabled": True, "reason": "tenant leak", "revision": 8},
]
_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    is_query: bool

    @property
    def writes(self) -> bool:
        """Cosmos REST: POST creates (unless it is a query), PUT replaces, DELETE deletes, PATCH patches."""
        return self.method in ("PUT", "DELETE", "PATCH") or (self.method == "POST" and not self.is_query)


@contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[Seen]]]:
    """A loopback HTTP proxy to `upstream` that records every request's method and path."""
    seen: list[Seen] = []
    client = httpx.Client(base_url=upstream.rstrip("/"), timeout=10)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            seen.append(
                Seen(
                    self.command,
                    self.path.split("?")[0],
                    self.headers.get("x-ms-documentdb-isquery", "").lower() == "true",
                )
            )
            answer = client.request(self.command, self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()
        client.close()


def snapshot(server: CosmosServer, database: str) -> dict[str, list[dict[str, Any]]]:
    db = server.client().get_database_client(database)
    return {
        c["id"]: sorted(db.get_container_client(c["id"]).read_all_items(), key=lambda d: d["id"])
        for c in db.list_containers()
    }


def test_a_whole_rollback_makes_no_write_call_to_cosmos(
    cosmos_server: CosmosServer, tmp_path: Path, sqlite_url: str
) -> None:
    database = f"opsbot-{uuid.uuid4().hex[:8]}"
    cosmos_server.seed(database, CONTAINERS, {"trading-control": CONTROL})
    before = snapshot(cosmos_server, database)
    with (
        recording_proxy(cosmos_server.endpoint) as (endpoint, seen),
        running_stack(
            sqlite_url,
            tmp_path / "inc",
            COSMOS_ENDPOINT=endpoint,
            COSMOS_KEY=cosmos_server.key,
            COSMOS_DATABASE=database,
        ) as stack,
    ):
        assert type(stack.deps.cosmos) is CosmosReader and spec(stack).runner.parts.cosmos is stack.deps.cosmos
        approval_id, posted = request(stack, text="controls ignored --trigger controls")
        click(stack, user=OWNER, approval_id=approval_id, posted=posted)
        row = finished(stack)
        assert row.status == RollbackStatus.COMPLETED.value, row.failure
        assert row.bundle_path
        lines, _ = bundle_lines(row.bundle_path)
        cosmos = next(line for line in lines if line["kind"] == "cosmos_control")
        assert cosmos["configured"] is True and "error" not in cosmos
        assert cosmos["documents"]["global_"]["revision"] == 9
        assert [s["scope"] for s in cosmos["documents"]["scopes"]] == ["tenant:acme"]
        stack.deps.cosmos.close()
    assert any(s.is_query for s in seen)  # the control documents were read through the proxy
    assert [s for s in seen if s.writes] == []  # and nothing was created, replaced, patched or deleted
    assert snapshot(cosmos_server, database) == before


def test_the_recording_proxy_does_see_writes(cosmos_server: CosmosServer) -> None:
    """The negative control: the same proxy sees the prober's create and delete as writes."""
    database = f"opsbot-{uuid.uuid4().hex[:8]}"
    cosmos_server.seed(database, CONTAINERS, {"trading-control": CONTROL})
    with recording_proxy(cosmos_server.endpoint) as (endpoint, seen):
        reader = CosmosReader(endpoint=endpoint, key=cosmos_server.key, database=database)
        CosmosProber(reader).probe("order")
        reader.close()
    assert [s.method for s in seen if s.writes] == ["POST", "DELETE"]


def test_the_rollback_can_only_hold_a_cosmos_reader() -> None:
    # The runner's one Cosmos handle is typed as a reader; the reader has no public way to write.
    assert get_type_hints(RunnerParts)["cosmos"] == CosmosReader | None
    verbs = ("create", "upsert", "replace", "delete", "patch", "write", "execute", "batch", "probe")
    public = [name for name in dir(CosmosReader) if not name.startswith("_")]
    assert not [name for name in public if any(v in name.lower() for v in verbs)]
    # No rollback module imports the Cosmos SDK or the prober, or reaches into the reader's private parts.
    assert ROLLBACK_SOURCES
    for path in ROLLBACK_SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert not [name for name in imported if "azure" in name or "CosmosProber" in name], path
        private = [
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
        ]
        assert not [attr for attr in private if attr in ("_container", "_connect", "_client", "_translate")], path
