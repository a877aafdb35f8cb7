"""Debian's Prometheus for the local workspace: the monitoring's Prometheus signals, watched for real.

When a `prometheus` binary is installed (Debian's package: /usr/bin/prometheus), the workspace runs
it as a child process on loopback with a generated config: every second it scrapes the simulated
backend's `GET /metrics`, whose counters the drills raise, so a drill such as "Platform auth
failing" breaches the runbook's PromQL signals as it would in production. Its data lives in a
temporary directory removed on stop (a rehearsal's metrics are not worth keeping, and two
workspaces never share a locked data folder).

Prometheus starts before the bot (so the bot's OPSBOT_PROMETHEUS_URL only ever names a running
server); it learns the backend's address afterwards through a file_sd target file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from rehearsal.sim import processes

DEBIAN_BINARY = Path("/usr/bin/prometheus")
READY_TIMEOUT_S = 30.0
CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: trading
    scrape_interval: 1s
    scrape_timeout: 900ms
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
"""


class PrometheusFailed(RuntimeError):
    pass


def binary() -> str | None:
    """`prometheus` on PATH, else Debian's /usr/bin/prometheus; None when neither is there."""
    found = shutil.which("prometheus")
    if found:
        return found
    return str(DEBIAN_BINARY) if os.access(DEBIAN_BINARY, os.X_OK) else None


def missing_reason() -> str:
    return (
        "Prometheus is not installed (apt-get install prometheus), so the monitoring's Prometheus "
        "signals are not watched here"
    )


class LocalPrometheus:
    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.folder = Path(tempfile.mkdtemp(prefix="opsbot-prometheus-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets(self) -> Path:
        return self.folder / "targets.json"

    def start(self) -> LocalPrometheus:
        """Start it and wait until it answers /-/ready; raises PrometheusFailed (and cleans up) if not."""
        self._write_targets([])
        config = self.folder / "prometheus.yml"
        config.write_text(CONFIG.format(targets=self.targets), encoding="utf-8")
        self.port = _free_port()
        with (self.folder / "prometheus.log").open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    self.executable,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    "--storage.tsdb.retention.time=1d",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_ready()
        except PrometheusFailed:
            self.stop()
            raise
        return self

    def scrape(self, target: str) -> None:
        """Scrape `target` (host:port) every second from now on."""
        self._write_targets([target])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            processes.stop(process, grace_s=10)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise PrometheusFailed(f"it exited at start: {self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise PrometheusFailed(f"not ready within {READY_TIMEOUT_S:g} s: {self._log_tail()}")

    def _write_targets(self, targets: list[str]) -> None:
        """Atomically: Prometheus watches the folder and must never read half a file."""
        tmp = self.folder / ".targets.json.tmp"
        tmp.write_text(json.dumps([{"targets": targets, "labels": {}}] if targets else []), encoding="utf-8")
        os.replace(tmp, self.targets)

    def _log_tail(self) -> str:
        try:
            lines = (self.folder / "prometheus.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        return " / ".join(lines[-3:])[-400:] or "no output"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
