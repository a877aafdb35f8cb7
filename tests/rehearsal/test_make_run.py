"""`make run` (`opsbot run`) on a fresh machine: no .env, no Slack variables, an empty working directory.

It must print one loopback URL whose page works; with Slack credentials it serves Slack instead; in
production without them it refuses and starts nothing. One test runs `make run` itself on a clone of the
committed HEAD (uncommitted changes are not in it), where the Makefile builds a fresh virtualenv.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rehearsal.workspace import prometheus as local_prometheus

OPSBOT = Path(sys.executable).with_name("opsbot")
ROOT = Path(__file__).resolve().parents[2]
MAKE_RUN_TIMEOUT_S = 300  # a fresh venv from PyPI (and `npm ci` when npm is there) before the URL
URL = re.compile(r"http://127\.0\.0\.1:\d+/")
PREFIXES = ("SLACK_", "OPSBOT_", "TRADING_", "PLATFORM_", "COSMOS_", "GITHUB_", "JWT_SECRET")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine: none of the bot's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    return {**env, **extra}


class Process:
    """`opsbot <args>`, or any `argv` (then in its own process group, stderr folded into stdout)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], *, argv: list[str] | None = None) -> None:
        stderr = subprocess.STDOUT if argv else subprocess.PIPE  # make and pip write plenty to stderr
        self.proc = subprocess.Popen(
            argv or [str(OPSBOT), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=bool(argv),
        )
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

    def children(self, pid: int | None = None) -> list[int]:
        pid = pid or self.proc.pid
        path = Path(f"/proc/{pid}/task/{pid}/children")
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
        if local_prometheus.binary() is not None:  # Debian's Prometheus runs with the workspace
            assert "Prometheus: local, scraping the simulated backend's /metrics every second" in printed
        else:
            assert "Prometheus: not running (Prometheus is not installed" in printed
        page_answers_a_command(url)
        children = process.children()
    finally:
        code = process.stop()
    assert code == 0
    assert (fresh_dir / "opsbot.db").is_file()
    for pid in children:  # the Cosmos-protocol server (node) and Prometheus went with it
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def page_answers_a_command(url: str) -> None:
    """The page is served and a `/halt status` typed as the operator gets the bot's answer."""
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "Local workspace" in page.text
    answer = httpx.post(url + "api/command", json={"user": "UOPERATOR", "text": "/halt status"}, timeout=15)
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 15
    while not any(
        "Control revision" in m["text"]
        for m in httpx.get(url + "api/state", params={"user": "UOPERATOR"}, timeout=10).json()["messages"]
    ):
        assert time.monotonic() < deadline, "the /halt status answer never reached the page"
        time.sleep(0.2)


@pytest.mark.timeout(MAKE_RUN_TIMEOUT_S + 60)
def test_make_run_on_a_clean_clone_builds_its_venv_and_serves_a_working_page(tmp_path: Path) -> None:
    """The committed HEAD, cloned: `make run` creates .venv itself (no .env, no Slack variables)."""
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(clone)],
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    assert not (clone / ".venv").exists() and not (clone / ".env").exists()
    env = {k: v for k, v in clean_env().items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    make = Process([], clone, env, argv=["make", "run", "RUN_ARGS=--port 0 --no-open"])
    try:
        url = make.wait_for_line(URL, timeout=MAKE_RUN_TIMEOUT_S).group(0)
        make.wait_for_line(re.compile(r"Ctrl-C to stop"))
        assert not url.endswith(":3000/"), "RUN_ARGS did not reach `opsbot run` (is the Makefile committed?)"
        assert (clone / ".venv" / "bin" / "opsbot").is_file()  # made by `make run`, not borrowed
        assert len(URL.findall("".join(make.seen))) == 1
        page_answers_a_command(url)
        opsbot = make.children()  # the recipe's process: `opsbot run` (bash execs a one-command recipe)
        assert len(opsbot) == 1 and "opsbot" in Path(f"/proc/{opsbot[0]}/cmdline").read_text()
        started = [opsbot[0], *make.children(opsbot[0])]
        os.kill(opsbot[0], signal.SIGTERM)  # what Ctrl-C does to the foreground job, minus make's own noise
        assert make.proc.wait(timeout=30) == 0  # opsbot stopped cleanly, so make reports success
    finally:
        if make.proc.poll() is None:
            os.killpg(make.proc.pid, signal.SIGKILL)
            make.proc.wait(timeout=10)
    with pytest.raises(ProcessLookupError):
        os.killpg(make.proc.pid, 0)  # nothing of the group outlived it
    for pid in started:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_run_in_production_without_credentials_refuses_and_starts_nothing(fresh_dir: Path) -> None:
    for command in ("run", "workspace"):
        done = subprocess.run(
            [str(OPSBOT), command, "--port", "0"],
            cwd=fresh_dir,
            capture_output=True,
            text=True,
            env=clean_env(OPSBOT_ENV="production"),
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
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
