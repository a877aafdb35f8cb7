"""Acknowledgement benchmark: opsbot's real HTTP endpoint against a bare Bolt app that only acks.

Both apps are served the same way (waitress on loopback via `rehearsal.sim.stack.HttpServer`), verify the
same signing secret and run with `process_before_response=True`. The opsbot side is the real bot
(built as `opsbot serve` builds it, SQLite in a temp dir) with the simulated trading backend answering
after 2 s; every `/halt global <reason>` it acks is then really worked on (backend read, approval
stored, request posted to the Slack peer) on the lazy executor, which the run checks at the end.

The stand-ins (Slack peer, trading backend, platform auth, GitHub) run in a child process: in
production their CPU is Slack's and the backend's, not the bot's, so they must not share the bot's
interpreter lock. The load generator stays in this process and costs both apps the same.

    python bench/ack.py [--requests 400] [--warmup 40]

Prints a table, then as its LAST line one JSON object (the figures at concurrency 8 and 1).
Targets (reported, not asserted): ratio opsbot/bare >= 0.5 at c8, opsbot p99 at c8 < 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.bootstrap import build_deps, start_notifier
from bot.storage.migrate import upgrade
from commands.server.app import build_app
from commands.server.serve import settle_heap
from commands.server.web import Router
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.github import SimGitHub
from rehearsal.sim.jwks import SimPlatformAuth
from rehearsal.sim.stack import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    GITHUB_TOKEN,
    ISSUER,
    REPOSITORY,
    SIGNING_SECRET,
    HttpServer,
    local_settings,
)
from rehearsal.slack.client import sign
from rehearsal.slack.peer import SlackPeer

EVENTS_PATH = "/slack/events"
OPERATOR = "UBENCHOP"
HALT_AUTHORITY = "UBENCHHA"
CHANNEL = "C0INCIDENT"
ROLES = {"OPSBOT_OPERATORS": OPERATOR, "OPSBOT_HALT_AUTHORITIES": HALT_AUTHORITY}
LEVELS = (1, 8)
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class Signed:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Run:
    app: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def standins(conn: Connection, backend_latency_s: float) -> None:
    """Child process: the stand-ins, answering the parent's questions over `conn` until told to stop."""
    peer = SlackPeer(bot_token=BOT_TOKEN).start()
    auth = SimPlatformAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=ISSUER).start()
    github = SimGitHub(token=GITHUB_TOKEN, repository=REPOSITORY).start()
    backend = SimBackend(jwt_public_key=auth.public_pem(), issuer=ISSUER).start()
    backend.faults.latency_s = backend_latency_s
    conn.send(
        {
            "api_url": peer.api_url,
            "jwks_url": auth.jwks_url,
            "token_url": auth.token_url,
            "github_url": github.url,
            "backend_url": backend.url,
        }
    )
    while True:
        ask = conn.recv()
        if ask == "response_url":
            conn.send(peer.response_url(channel=CHANNEL, user=OPERATOR))
        elif ask == "posts":
            conn.send(len(peer.calls_to("chat.postMessage")))
        else:
            break
    for server in (backend, github, auth, peer):
        server.stop()


class Standins:
    """The parent's handle on the child process of stand-ins."""

    def __init__(self, backend_latency_s: float) -> None:
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(
            target=standins, args=(child, backend_latency_s), daemon=True
        )
        self._proc.start()
        self.urls: dict[str, str] = self._conn.recv()

    def ask(self, what: str) -> Any:
        self._conn.send(what)
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


def bot_server(standins: Standins, database_url: str) -> tuple[HttpServer, Any, Any]:
    """The real bot, built as `opsbot serve` builds it (its notifier too), pointed at the stand-ins."""
    urls = standins.urls
    auth = SimpleNamespace(jwks_url=urls["jwks_url"], token_url=urls["token_url"])
    settings = local_settings(
        database_url=database_url,
        backend_url=urls["backend_url"],
        slack_api_url=urls["api_url"],
        auth=auth,
        github_url=urls["github_url"],
        **ROLES,
    )
    deps = build_deps(settings)
    upgrade(deps.engine)
    server = HttpServer(Router(build_app(deps), deps)).start()
    return server, deps, start_notifier(deps)  # the notifier posts the approval cards, as in `opsbot serve`


def bare_app(api_url: str) -> App:
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
        token_verification_enabled=False,
    )

    @app.command("/halt")
    def halt(ack: Ack) -> None:
        ack()

    return app


def presign(response_url: str, count: int, tag: str) -> list[Signed]:
    """`count` distinct signed `/halt global <reason>` commands, as Slack would send them."""
    signed = []
    for i in range(count):
        fields = {
            "token": "bench-verification-token",
            "team_id": "T0LOCAL00",
            "team_domain": "local",
            "channel_id": CHANNEL,
            "channel_name": "incident",
            "user_id": OPERATOR,
            "user_name": "bench",
            "command": "/halt",
            "text": f"global bench {tag} {i}",
            "api_app_id": "A0LOCAL00",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.{i}.{secrets.token_hex(8)}",
        }
        body = urlencode(fields)
        ts = int(time.time())
        signed.append(
            Signed(
                body.encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": str(ts),
                    "X-Slack-Signature": sign(SIGNING_SECRET, body, ts),
                },
            )
        )
    return signed


def drive(name: str, url: str, requests: Sequence[Signed], concurrency: int) -> Run:
    """Send `requests` over `concurrency` keep-alive connections, each in its own thread."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    shares = [list(requests[i::concurrency]) for i in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start = threading.Barrier(concurrency + 1)

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.connect()
        start.wait()
        for req in shares[n]:
            began = time.perf_counter()
            conn.request("POST", EVENTS_PATH, body=req.body, headers=req.headers)
            response = conn.getresponse()
            response.read()
            latencies[n].append((time.perf_counter() - began) * 1000)
            if response.status != 200:
                errors[n] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,), name=f"bench-{n}") for n in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    return Run(name, concurrency, len(requests), seconds, [x for part in latencies for x in part], sum(errors))


def table(runs: list[Run]) -> str:
    lines = [
        f"{'app':<8} {'conc':>4} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6}"
    ]
    for r in runs:
        lines.append(
            f"{r.app:<8} {r.concurrency:>4} {r.requests:>8} {r.rps:>9.0f} {r.pct(50):>8.2f} "
            f"{r.pct(90):>8.2f} {r.pct(99):>8.2f} {max(r.latencies_ms, default=0):>8.2f} {r.errors:>6}"
        )
    return "\n".join(lines)


def wait_for_posts(standins: Standins, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen: int = standins.ask("posts")
    while seen < expected and time.monotonic() < deadline:
        time.sleep(0.25)
        seen = standins.ask("posts")
    return seen


def _stderr_errors() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    return handler


class _Counter(logging.Handler):
    """Counts the bot's warnings (slow-backend retries are expected here) instead of printing each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="measured requests per app and level")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up requests before each measurement (default: a tenth of --requests, at least 10)",
    )
    parser.add_argument("--backend-latency", type=float, default=2.0, help="simulated backend latency, s")
    parser.add_argument(
        "--no-settle-heap",
        action="store_true",
        help="skip the gc.freeze() that `opsbot serve` does once started (to see its effect)",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=600.0, help="how long to wait for the lazy work to post every request, s"
    )
    args = parser.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else max(10, args.requests // 10)
    return args


def quiet_bot_logs() -> _Counter:
    """Count the bot's warnings instead of printing them; errors are still printed."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    warnings = _Counter()
    bot_log = logging.getLogger("opsbot")
    bot_log.setLevel(logging.WARNING)
    bot_log.propagate = False
    bot_log.addHandler(warnings)
    bot_log.addHandler(_stderr_errors())
    return warnings


def measure(args: argparse.Namespace, warnings: _Counter) -> tuple[list[Run], int, int]:
    """Both apps at each level (each warmed right before it is measured), then the opsbot work drained."""
    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as tmp:
        standins = Standins(args.backend_latency)
        server, deps, notifier = bot_server(standins, f"sqlite:///{tmp}/bench.db")
        bare = HttpServer(SlackRequestHandler(bare_app(standins.urls["api_url"]), path=EVENTS_PATH)).start()
        urls = {"bare": bare.url, "opsbot": server.url}
        response_url = standins.ask("response_url")
        if not args.no_settle_heap:
            settle_heap()  # as `opsbot serve` does once the app is built (commands/server/serve.py)
        try:
            runs: list[Run] = []
            for level in LEVELS:
                for name in ("bare", "opsbot"):
                    drive(name, urls[name], presign(response_url, args.warmup, f"w{level}"), level)
                    runs.append(drive(name, urls[name], presign(response_url, args.requests, f"c{level}"), level))
            sent = len(LEVELS) * (args.warmup + args.requests)
            print(
                f"opsbot vs bare Bolt ack, loopback, waitress 16 threads, backend latency {args.backend_latency} s, "
                f"{args.requests} requests per row (after {args.warmup} warm-up), "
                f"start-up heap {'NOT ' if args.no_settle_heap else ''}frozen"
            )
            print(table(runs))
            # The acks are only half: every opsbot request must also have been worked on.
            print(f"waiting for the lazy work to post {sent} approval requests …", flush=True)
            began = time.perf_counter()
            posted = wait_for_posts(standins, sent, args.drain_timeout)
            print(
                f"slack peer received {posted} chat.postMessage for {sent} opsbot requests "
                f"({'all' if posted == sent else 'MISSING ' + str(sent - posted)}) "
                f"after {time.perf_counter() - began:.1f} s more; {warnings.count} bot warnings logged "
                f"(backend reads timing out at the {args.backend_latency} s latency are expected)"
            )
        finally:
            bare.stop()
            server.stop()
            notifier.stop()
            deps.engine.dispose()
            standins.stop()
    return runs, sent, posted


def report(runs: list[Run], sent: int, posted: int) -> dict[str, Any]:
    by = {(r.app, r.concurrency): r for r in runs}
    b8, o8, b1, o1 = by["bare", 8], by["opsbot", 8], by["bare", 1], by["opsbot", 1]
    result: dict[str, Any] = {
        "bare_rps": round(b8.rps, 1),
        "opsbot_rps": round(o8.rps, 1),
        "ratio": round(o8.rps / b8.rps, 3) if b8.rps else 0.0,
        "p99_ms_c8": round(o8.pct(99), 2),
        "bare_rps_c1": round(b1.rps, 1),
        "opsbot_rps_c1": round(o1.rps, 1),
        "ratio_c1": round(o1.rps / b1.rps, 3) if b1.rps else 0.0,
        "p50_ms_c8": round(o8.pct(50), 2),
        "p99_ms_c1": round(o1.pct(99), 2),
        "bare_p99_ms_c8": round(b8.pct(99), 2),
        "opsbot_requests": sent,
        "posted": posted,
        "errors": sum(r.errors for r in runs),
    }
    verdict = [
        f"ratio at c8 {result['ratio']:.2f} ({'meets' if result['ratio'] >= TARGET_RATIO else 'MISSES'} >= "
        f"{TARGET_RATIO})",
        f"opsbot p99 at c8 {result['p99_ms_c8']:.1f} ms ({'meets' if result['p99_ms_c8'] < TARGET_P99_MS else 'MISSES'}"
        f" < {TARGET_P99_MS:.0f} ms)",
        f"median opsbot ack at c1 {statistics.median(o1.latencies_ms):.2f} ms",
    ]
    print("targets: " + "; ".join(verdict))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs, sent, posted = measure(args, quiet_bot_logs())
    result = report(runs, sent, posted)
    print(json.dumps(result), flush=True)  # last, as one line of JSON
    return 0 if posted == sent and result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
