"""Shared by the monitoring tests: a local server answering with Prometheus's HTTP API shapes (and its
faults), a loopback stack wired to it, and helpers that read the incident channel like an operator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.monitoring.store import MonitoringStore
from bot.monitoring.watcher import Watcher
from bot.runbook.transitions import CutoverTransition, notify
from commands.monitoring import build_watcher
from commands.webapi.monitoring import ChannelPacer, SlackPoster
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import ADMIN, ADMIN2, CHANNEL, ROLES

# Modes: ok (values), empty (empty vectors), nan, error ({"status": "error"}), http500 (no envelope),
# bad_json, scalar, string (resultType string), slow (answers after `delay` s).


@dataclass
class FakePrometheus:
    """Answers `/api/v1/query` and `/api/v1/query_range`: a value per query, chosen by a substring
    of the PromQL (first match in `values`; anything else is 0)."""

    values: dict[str, float] = field(default_factory=dict)
    mode: str = "ok"
    delay: float = 3.0
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def start(self) -> FakePrometheus:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def value_for(self, query: str) -> float:
        return next((v for k, v in self.values.items() if k in query), 0.0)

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append({"path": path, **params})
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "http500":
            return 500, b"internal server error"
        if self.mode == "bad_json":
            return 200, b"<html>not prometheus</html>"
        if self.mode == "error":
            return 422, _json({"status": "error", "errorType": "execution", "error": "query timed out in expr"})
        value = self.value_for(params.get("query", ""))
        shown = "NaN" if self.mode == "nan" else f"{value:g}"
        if path.endswith("/query_range"):
            start, end = float(params["start"]), float(params["end"])
            step = max(float(params["step"]), (end - start) / 50)
            points = [[start + i * step, shown] for i in range(int((end - start) / step) + 1)]
            result: Any = [] if self.mode == "empty" else [{"metric": {}, "values": points}]
            return 200, _json({"status": "success", "data": {"resultType": "matrix", "result": result}})
        if self.mode == "scalar":
            return 200, _json({"status": "success", "data": {"resultType": "scalar", "result": [time.time(), shown]}})
        if self.mode == "string":
            return 200, _json({"status": "success", "data": {"resultType": "string", "result": [time.time(), "x"]}})
        result = [] if self.mode == "empty" else [{"metric": {}, "value": [time.time(), shown]}]
        return 200, _json({"status": "success", "data": {"resultType": "vector", "result": result}})


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the watcher sends its queries at once; a full backlog costs a 1 s SYN retry
    fake: FakePrometheus


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        params["authorization"] = self.headers.get("Authorization") or ""
        status, body = cast(_Server, self.server).fake.answer(url.path, params)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_prom() -> Iterator[FakePrometheus]:
    fake = FakePrometheus().start()
    yield fake
    fake.stop()


def monitoring_overrides(prom_url: str | None, **more: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        **ROLES,
        "OPSBOT_INCIDENT_CHANNEL": CHANNEL,
        "OPSBOT_PROMETHEUS_TIMEOUT_SECONDS": 0.5,
        "OPSBOT_MONITOR_INTERVAL_SECONDS": 0.2,
        "OPSBOT_LEADER_POLL_SECONDS": 0.2,
    }
    if prom_url:
        values["OPSBOT_PROMETHEUS_URL"] = prom_url
    return {**values, **more}


@pytest.fixture
def mon_stack(sqlite_url: str, fake_prom: FakePrometheus) -> Iterator[Stack]:
    with Stack(database_url=sqlite_url, overrides=monitoring_overrides(fake_prom.url)) as running:
        yield running


def watcher(stack: Stack) -> Watcher:
    """The leader's watcher, without pacing (the pacer has its own test)."""
    return build_watcher(stack.deps, poster=SlackPoster(stack.deps.slack, ChannelPacer(0.0)))


def store(stack: Stack) -> MonitoringStore:
    return MonitoringStore(stack.deps.engine, stack.deps.audit)


def open_window(
    stack: Stack,
    *,
    seq: int = 1,
    to_stage: str = "web-internal-adoption",
    from_stage: str = "backend-internal-validation",
) -> None:
    """What the cutover does once a stage is entered: tell the subscribers."""
    notify(
        stack.deps.on_cutover_transition,
        CutoverTransition(
            seq=seq,
            from_stage=from_stage,
            to_stage=to_stage,
            entered_at=stack.deps.now(),
            version="abc1234",
            requested_by=ADMIN,
            approved_by=ADMIN2,
            approval_id=f"apr-{seq}",
            request_id=f"req-{seq}",
            channel=CHANNEL,
        ),
    )


def posts(stack: Stack, prefix: str, channel: str = CHANNEL) -> list[ApiCall]:
    return [
        c
        for c in stack.peer.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and str(c.args.get("text") or "").startswith(prefix)
    ]


def alerts(stack: Stack, signal_name: str | None = None) -> list[ApiCall]:
    found = posts(stack, "Monitoring alert: ")
    return [c for c in found if signal_name is None or f"Monitoring alert: {signal_name}:" in c.args["text"]]


def degraded(stack: Stack) -> list[ApiCall]:
    return posts(stack, ":warning: *Monitoring degraded:*")


def restored(stack: Stack) -> list[ApiCall]:
    return posts(stack, ":white_check_mark: *Monitoring restored:*")


def button(call: ApiCall, action_id: str) -> dict[str, Any]:
    for block in call.args.get("blocks") or []:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {call.args}")


def later(stack: Stack, seconds: float) -> None:
    """Move the bot's clock on (the watcher's windows and summaries follow it)."""
    current = stack.deps.clock()
    stack.deps.clock = lambda: current + timedelta(seconds=seconds)
