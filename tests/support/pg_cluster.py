"""A throwaway PostgreSQL cluster a test owns: initdb into a temp dir, start on a free port, and
stop it or freeze it (SIGSTOP) to play a store that is down or hung."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; the cluster then belongs to the postgres user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root, self.data, self.port = root, root / "data", _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(_as_postgres(list(args)), check=True, capture_output=True, cwd="/", timeout=60)

    def init(self) -> None:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def fresh_database(self) -> Cluster:
        import uuid

        from sqlalchemy import create_engine, text

        name = f"t_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self.url = self.url.rsplit("/", 1)[0] + "/" + name
        return self

    def start_if_stopped(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            self.start()

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _pids(self) -> list[int]:
        head = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(head)], capture_output=True, text=True).stdout.split()
        return [head, *map(int, children)]

    def freeze(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)


@contextmanager
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="opsbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    running = Cluster(root)
    running.init()
    running.start()
    try:
        yield running
    finally:
        if (running.data / "postmaster.pid").exists():
            running.thaw()
            running.stop()
        shutil.rmtree(root, ignore_errors=True)
