"""Acknowledgement benchmark: opsbot's real HTTP endpoint against a bare Bolt app that only acks.

Both apps are served the same way (waitress on loopback via `bot.sim.stack.HttpServer`), verify the
same signing secret and run with `process_before_response=True`. The opsbot side is the real bot
(`bot.sim.stack.Stack`, SQLite in a temp dir) with the simulated trading backend answering after
2 s; every `/halt global <reason>` it acks is then really worked on (backend read, approval stored,
request posted to the Slack peer) on the lazy executor, which the run checks at the end.

    python bench/ack.py [--requests 400] [--warmup 40]

Prints a table, then as its LAST line one JSON object (the figures at concurrency 8 and 1).
Targets (reported, not asserted): ratio opsbot/bare >= 0.5 at c8, opsbot p99 at c8 < 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.serve import settle_heap
from bot.sim.slack_client import sign
from bot.sim.slack_peer import SlackPeer
from bot.sim.stack import BOT_TOKEN, SIGNING_SECRET, HttpServer, Stack

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


def bare_app(peer: SlackPeer) -> App:
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=peer.api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
        token_verification_enabled=False,
    )

    @app.command("/halt")
    def halt(ack: Ack) -> None:
        ack()

    return app


def presign(peer: SlackPeer, count: int, tag: str) -> list[Signed]:
    """`count` distinct signed `/halt global <reason>` commands, as Slack would send them."""
    signed = []
    for i in range(count):
        fields = {
            "token": "bench-verification-token", "team_id": "T0LOCAL", "team_domain": "local",
            "channel_id": CHANNEL, "channel_name": "incident", "user_id": OPERATOR, "user_name": "bench",
            "command": "/halt", "text": f"global bench {tag} {i}", "api_app_id": "A0LOCAL",
            "is_enterprise_install": "false",
            "response_url": peer.response_url(channel=CHANNEL, user=OPERATOR),
            "trigger_id": f"{int(time.time())}.{i}.{secrets.token_hex(8)}",
        }
        body = urlencode(fields)
        ts = int(time.time())
        signed.append(Signed(body.encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(SIGNING_SECRET, body, ts),
        }))
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
    lines = [f"{'app':<8} {'conc':>4} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
             f"{'max ms':>8} {'errors':>6}"]
    for r in runs:
        lines.append(f"{r.app:<8} {r.concurrency:>4} {r.requests:>8} {r.rps:>9.0f} {r.pct(50):>8.2f} "
                     f"{r.pct(90):>8.2f} {r.pct(99):>8.2f} {max(r.latencies_ms, default=0):>8.2f} {r.errors:>6}")
    return "\n".join(lines)


def wait_for_posts(peer: SlackPeer, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen = len(peer.calls_to("chat.postMessage"))
    while seen < expected and time.monotonic() < deadline:
        time.sleep(0.25)
        seen = len(peer.calls_to("chat.postMessage"))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="measured requests per app and level")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests before each measurement "
                        "(default: a tenth of --requests, at least 10)")
    parser.add_argument("--backend-latency", type=float, default=2.0, help="simulated backend latency, s")
    parser.add_argument("--no-settle-heap", action="store_true",
                        help="skip the gc.freeze() that `opsbot serve` does once started (to see its effect)")
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="how long to wait for the lazy work to post every request, s")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(10, args.requests // 10)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    warnings = _Counter()
    bot_log = logging.getLogger("opsbot")
    bot_log.setLevel(logging.WARNING)
    bot_log.propagate = False
    bot_log.addHandler(warnings)
    bot_log.addHandler(_stderr_errors())  # errors are still printed

    with tempfile.TemporaryDirectory(prefix="opsbot-bench-") as tmp:
        stack = Stack(database_url=f"sqlite:///{tmp}/bench.db", overrides=dict(ROLES),
                      backend_latency_s=args.backend_latency).start()
        bare = HttpServer(SlackRequestHandler(bare_app(stack.peer), path=EVENTS_PATH)).start()
        urls = {"bare": bare.url, "opsbot": stack.server.url}
        if not args.no_settle_heap:
            settle_heap()  # as `opsbot serve` does once the app is built (bot/serve.py)
        try:
            runs: list[Run] = []
            sent_to_opsbot = 0
            for level in LEVELS:
                for name in ("bare", "opsbot"):  # each app warmed right before it is measured
                    drive(name, urls[name], presign(stack.peer, warmup, f"w{level}"), level)
                    batch = presign(stack.peer, args.requests, f"c{level}")
                    runs.append(drive(name, urls[name], batch, level))
                    if name == "opsbot":
                        sent_to_opsbot += warmup + args.requests
            print(f"opsbot vs bare Bolt ack, loopback, waitress 16 threads, backend latency {args.backend_latency} s, "
                  f"{args.requests} requests per row (after {warmup} warm-up), "
                  f"start-up heap {'NOT ' if args.no_settle_heap else ''}frozen")
            print(table(runs))
            # The acks are only half: every opsbot request must also have been worked on.
            print(f"waiting for the lazy work to post {sent_to_opsbot} approval requests …", flush=True)
            began = time.perf_counter()
            posted = wait_for_posts(stack.peer, sent_to_opsbot, args.drain_timeout)
            print(f"slack peer received {posted} chat.postMessage for {sent_to_opsbot} opsbot requests "
                  f"({'all' if posted == sent_to_opsbot else 'MISSING ' + str(sent_to_opsbot - posted)}) "
                  f"after {time.perf_counter() - began:.1f} s more; {warnings.count} bot warnings logged "
                  f"(backend reads timing out at the {args.backend_latency} s latency are expected)")
        finally:
            bare.stop()
            stack.stop()

    by = {(r.app, r.concurrency): r for r in runs}
    b8, o8, b1, o1 = by["bare", 8], by["opsbot", 8], by["bare", 1], by["opsbot", 1]
    result: dict[str, Any] = {
        "bare_rps": round(b8.rps, 1), "opsbot_rps": round(o8.rps, 1),
        "ratio": round(o8.rps / b8.rps, 3) if b8.rps else 0.0,
        "p99_ms_c8": round(o8.pct(99), 2),
        "bare_rps_c1": round(b1.rps, 1), "opsbot_rps_c1": round(o1.rps, 1),
        "ratio_c1": round(o1.rps / b1.rps, 3) if b1.rps else 0.0,
        "p50_ms_c8": round(o8.pct(50), 2), "p99_ms_c1": round(o1.pct(99), 2),
        "bare_p99_ms_c8": round(b8.pct(99), 2),
        "opsbot_requests": sent_to_opsbot, "posted": posted,
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
    print(json.dumps(result), flush=True)
    ok = posted == sent_to_opsbot and result["errors"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
