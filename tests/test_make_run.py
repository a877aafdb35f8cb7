"""`make run` (`opsbot run`) on a fresh machine: no .env, no Slack variables, an empty working directory.

It must print one loopback URL whose page works; with Slack credentials it serves Slack instead; in
production without them it refuses and starts nothing.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

OPSBOT = Path(sys.executable).with_name("opsbot")
URL = re.compile(r"http://127\.0\.0\.1:\d+/")
PREFIXES = ("SLACK_", "OPSBOT_", "TRADING_", "PLATFORM_", "COSMOS_", "GITHUB_", "JWT_SECRET")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine: none of the bot's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    return {**env, **extra}


class Process:
    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(OPSBOT), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            self.lines.put(line)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise AssertionError(f"no line matching {pattern.pattern}; stdout: {self.seen}; stderr: {stderr}")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Iterator[Path]:
    assert not (tmp_path / ".env").exists()
    yield tmp_path


def test_run_without_credentials_serves_a_working_local_workspace(fresh_dir: Path) -> None:
    process = Process(["run", "--port", "0", "--no-open"], fresh_dir, clean_env())
    try:
        url = process.wait_for_line(URL).group(0)
        process.wait_for_line(re.compile(r"Ctrl-C to stop"))
        printed = "".join(process.seen)
        assert len(URL.findall(printed)) == 1, printed  # one URL, and loopback
        assert f"state: {fresh_dir.resolve() / 'opsbot.db'}" in printed and "opsbot workspace --reset" in printed
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "Local workspace" in page.text
        answer = httpx.post(url + "api/command", json={"user": "UOPERATOR", "text": "/halt status"}, timeout=15)
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 15
        while not any("Control revision" in m["text"] for m in httpx.get(
                url + "api/state", params={"user": "UOPERATOR"}, timeout=10).json()["messages"]):
            assert time.monotonic() < deadline, "the /halt status answer never reached the page"
            time.sleep(0.2)
        children = process.children()
    finally:
        code = process.stop()
    assert code == 0
    assert (fresh_dir / "opsbot.db").is_file()
    for pid in children:  # the Cosmos-protocol server (a node child) went with it
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_run_in_production_without_credentials_refuses_and_starts_nothing(fresh_dir: Path) -> None:
    for command in ("run", "workspace"):
        done = subprocess.run([str(OPSBOT), command, "--port", "0"], cwd=fresh_dir, capture_output=True, text=True,
                              env=clean_env(OPSBOT_ENV="production"), timeout=60, stdin=subprocess.DEVNULL,
                              check=False)
        assert done.returncode != 0
        assert "SLACK_BOT_TOKEN" in done.stderr and "SLACK_SIGNING_SECRET" in done.stderr
        assert "never starts in production" in done.stderr
        assert not URL.search(done.stdout)
        assert not (fresh_dir / "opsbot.db").exists()


def test_run_with_slack_credentials_serves_slack_not_the_workspace(fresh_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env(SLACK_BOT_TOKEN="xoxb-test-not-real", SLACK_SIGNING_SECRET="test-signing-secret-0123456789")
    process = Process(["run", "--port", str(port)], fresh_dir, env)
    try:
        process.wait_for_line(re.compile(rf"opsbot listening on http://127\.0\.0\.1:{port}/slack/events"))
        assert get_when_up(f"http://127.0.0.1:{port}/healthz").status_code == 200  # printed just before binding
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 404  # no workspace page
    finally:
        process.stop()


def get_when_up(url: str, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_workspace_reset_starts_from_nothing(fresh_dir: Path) -> None:
    (fresh_dir / "opsbot.db").write_bytes(b"not a database")
    (fresh_dir / "opsbot.db.workspace").mkdir()
    process = Process(["workspace", "--reset", "--port", "0", "--no-open"], fresh_dir, clean_env())
    try:
        process.wait_for_line(re.compile(r"reset: removed .*opsbot\.db"))
        url = process.wait_for_line(URL).group(0)
        messages = httpx.get(url + "api/state", params={"user": "UOPERATOR"}, timeout=10).json()["messages"]
        assert messages == []
    finally:
        assert process.stop() == 0
