"""A local Cosmos DB protocol server for tests and rehearsal: @vercel/cosmosdb-server from node_modules.

The server runs as a `node` subprocess on a loopback port it picks itself (`-p 0`; the port is read
from its "Ready" line, so there is no race for a free port). It serves plain HTTP (`--no-ssl`):
no self-signed certificate whose verification the client would have to switch off. Its account
document advertises `https://` locations whatever the mode, so clients must not follow endpoint
discovery; bot.clients.cosmos turns discovery off for every `http://` endpoint for that reason.

The server keeps everything in memory and checks no keys. `key` is the well-known emulator key,
so the same code also runs against the real Azure Cosmos DB emulator.

    python -m rehearsal.sim.cosmos   # prints COSMOS_ENDPOINT/COSMOS_KEY lines, runs until Ctrl-C
"""

from __future__ import annotations

import collections
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from azure.cosmos import CosmosClient, PartitionKey

from rehearsal.sim import processes

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"
# Published by Microsoft for the local emulator; not a secret.
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
_READY = re.compile(r"Ready to accept HTTP connections at \S+:(\d+)")


def node_binary() -> str | None:
    return shutil.which("node")


def available() -> bool:
    """True when `node` is on PATH and `npm ci` has installed the server."""
    return node_binary() is not None and CLI.is_file()


class CosmosServer:
    def __init__(self, *, host: str = "127.0.0.1", startup_timeout_s: float = 20.0) -> None:
        self.host = host
        self.key = EMULATOR_KEY
        self.endpoint = ""
        self._startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None
        self._admin: CosmosClient | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._tail: collections.deque[str] = collections.deque(maxlen=40)  # for failure messages

    def start(self) -> CosmosServer:
        node = node_binary()
        if node is None or not CLI.is_file():
            raise RuntimeError(f"cosmosdb-server is not installed (need node and {CLI}; run `npm ci`)")
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [node, str(CLI), "--host", self.host, "-p", "0", "--no-ssl"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._drainer = threading.Thread(
            target=self._drain, args=(self._proc.stdout,), daemon=True, name="cosmosdb-server-output"
        )
        self._drainer.start()
        try:
            deadline = time.monotonic() + self._startup_timeout_s
            self.endpoint = f"http://{self.host}:{self._await_port(deadline)}/"
            self._await_answer(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        processes.stop(proc)
        if self._drainer is not None:
            self._drainer.join(timeout=2)  # ends at EOF, now that the process is gone
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> CosmosServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self) -> CosmosClient:
        """An administrative client (tests seed and inspect with it; the bot never uses one like it)."""
        if self._admin is None:
            self._admin = CosmosClient(
                self.endpoint, self.key, enable_endpoint_discovery=False, connection_timeout=2, timeout=10
            )
        return self._admin

    def seed(
        self,
        database: str,
        containers: Mapping[str, str],
        docs: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Create `database`, each container with its partition key path, and insert `docs[container]`."""
        db = self.client().create_database_if_not_exists(database)
        for name, pk_path in containers.items():
            container = db.create_container_if_not_exists(name, PartitionKey(path=pk_path))
            for doc in (docs or {}).get(name, ()):
                container.upsert_item(dict(doc))

    def _drain(self, stream: IO[str] | None) -> None:
        # Keep reading so the pipe never fills and blocks the server.
        for line in stream or ():
            self._tail.append(line.rstrip())
            self._lines.put(line)

    def _await_port(self, deadline: float) -> int:
        while (left := deadline - time.monotonic()) > 0:
            if self._proc is not None and self._proc.poll() is not None and self._lines.empty():
                break
            try:
                line = self._lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if match := _READY.search(line):
                return int(match.group(1))
        raise RuntimeError("cosmosdb-server did not start: " + " | ".join(self._tail))

    def _await_answer(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.endpoint, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"cosmosdb-server at {self.endpoint} does not answer")


def main() -> None:
    with CosmosServer() as server:
        print(f"COSMOS_ENDPOINT={server.endpoint}\nCOSMOS_KEY={server.key}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
