"""An approved halt executes exactly once: many concurrent clicks, verbatim replays of one signed
click, several replicas sharing one PostgreSQL store, and a backend that is down, slow or failing.

Clicks are signed and sent over HTTP to the real bot; the Slack peer and the simulated trading
backend run on loopback in the test process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.storage.db import make_engine
from bot.storage.models import AuditEvent
from rehearsal.sim import stack as stack_mod
from rehearsal.sim.backend import SimBackend
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from rehearsal.slack.client import SlackSender, sign
from rehearsal.slack.peer import SlackPeer
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    HALT_C,
    OPERATOR,
    ROLES,
    approval_id_of,
    message_text,
    short_timeouts,
    text_of,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
HALT_PATH = "/api/trading-control/halt"
CLICKS = 50
REPLAYS = 20  # of the 50 clicks, this many are one signed request replayed byte for byte
PROCESSES = 4
AUTHORITIES = (HALT_A, HALT_B, HALT_C)


# -- building and firing clicks ---------------------------------------------------------------


@dataclass(frozen=True)
class SignedClick:
    """One click, signed once; `post` sends exactly these bytes and headers (a verbatim replay)."""

    body: str
    timestamp: int
    signature: str
    response_url_id: str

    def post(self, http: httpx.Client, events_url: str) -> httpx.Response:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(self.timestamp),
            "X-Slack-Signature": self.signature,
        }
        return http.post(events_url, content=self.body.encode(), headers=headers)


def build_click(peer: SlackPeer, *, user: str, approval_id: str, message_ts: str) -> SignedClick:
    """A click exactly as Slack would send it, built (and signed) without sending it anywhere."""
    capture = httpx.Client(transport=httpx.MockTransport(lambda _request: httpx.Response(200)))
    with SlackSender(
        bot_url="http://unused.invalid", signing_secret=stack_mod.SIGNING_SECRET, peer=peer, http=capture
    ) as builder:
        builder.click(user=user, action_id="approve", value=approval_id, channel=CHANNEL, message_ts=message_ts)
        body = builder.last_body
    capture.close()
    ts = int(time.time())
    response_url = _response_url_in(body)
    return SignedClick(body, ts, sign(stack_mod.SIGNING_SECRET, body, ts), response_url.rsplit("/", 1)[-1])


def _response_url_in(body: str) -> str:
    payload = json.loads(parse_qs(body)["payload"][0])
    return str(payload["response_url"])


def click_mix(peer: SlackPeer, approval_id: str, message_ts: str) -> list[SignedClick]:
    """REPLAYS copies of one signed click by HALT_A, then fresh clicks by the three halt authorities."""
    replayed = build_click(peer, user=HALT_A, approval_id=approval_id, message_ts=message_ts)
    fresh = [
        build_click(peer, user=AUTHORITIES[i % len(AUTHORITIES)], approval_id=approval_id, message_ts=message_ts)
        for i in range(CLICKS - REPLAYS)
    ]
    # Interleave, so replays and fresh clicks reach every target at about the same moment.
    mixed: list[SignedClick] = []
    for i in range(CLICKS):
        if i % 5 < 2 and sum(c is replayed for c in mixed) < REPLAYS:
            mixed.append(replayed)
        elif fresh:
            mixed.append(fresh.pop())
        else:
            mixed.append(replayed)
    assert len(mixed) == CLICKS and sum(c is replayed for c in mixed) == REPLAYS
    return mixed


def fire(clicks: list[SignedClick], events_urls: list[str]) -> list[int]:
    """Send every click at once (a barrier releases them together), round-robin over `events_urls`.
    Returns the target index each click went to."""
    clients = [httpx.Client(timeout=15.0, limits=httpx.Limits(max_connections=CLICKS)) for _ in events_urls]
    barrier = threading.Barrier(len(clicks))
    targets = [i % len(events_urls) for i in range(len(clicks))]

    def one(i: int) -> int:
        barrier.wait(timeout=10)
        return clicks[i].post(clients[targets[i]], events_urls[targets[i]]).status_code

    try:
        with ThreadPoolExecutor(max_workers=len(clicks)) as pool:
            statuses = list(pool.map(one, range(len(clicks))))
    finally:
        for client in clients:
            client.close()
    assert statuses == [200] * len(clicks), statuses  # every click is acked, winners and losers alike
    return targets


def already_handled(peer: SlackPeer) -> list[ApiCall]:
    return [c for c in peer.calls_to("response_url") if "Already handled" in text_of(c.args)]


def halt_posts(backend: SimBackend) -> int:
    return len(backend.calls("POST", HALT_PATH))


def steps(audit: AuditLog, approval_id: str) -> list[str]:
    return [f"{row.action}:{row.outcome}" for row in audit.for_approval(approval_id)]


def rows_named(audit: AuditLog, approval_id: str, action: str) -> list[AuditEvent]:
    return [row for row in audit.for_approval(approval_id) if row.action == action]


def latest_message_ts(peer: SlackPeer) -> str:
    return str(peer.channel_messages(CHANNEL)[-1]["ts"])


def assert_exactly_once(backend: SimBackend, audit: AuditLog, approval_id: str) -> AuditEvent:
    assert halt_posts(backend) == 1
    post = backend.calls("POST", HALT_PATH)[0]
    assert post.headers["idempotency-key"] == f"{approval_id}:halt"
    assert backend.control()["global"]["halted"] is True
    approved = rows_named(audit, approval_id, "halt.approved")
    executed = rows_named(audit, approval_id, "halt.executed")
    assert len(approved) == 1, steps(audit, approval_id)
    assert len(executed) == 1 and executed[0].outcome == "applied", steps(audit, approval_id)
    assert not rows_named(audit, approval_id, "halt.failed")
    return approved[0]


# -- (a) four replicas on one PostgreSQL store ------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replica_env(pg_url: str, peer: SlackPeer, backend: SimBackend, replica: str) -> dict[str, str]:
    # Only what a deployment would set: nothing inherited that could configure the bot differently.
    env = {
        key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT") if key in os.environ
    }
    env.update(ROLES)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": stack_mod.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": stack_mod.SIGNING_SECRET,
            "SLACK_API_URL": peer.api_url,
            "TRADING_API_URL": backend.url,
            "JWT_SECRET": stack_mod.JWT_SECRET,
            "PLATFORM_JWT_ISSUER": stack_mod.ISSUER,
            "OPSBOT_DATABASE_URL": pg_url,
            "OPSBOT_REPLICA_ID": replica,
        }
    )
    return env


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def sims() -> Iterator[tuple[SlackPeer, SimBackend]]:
    peer = SlackPeer(bot_token=stack_mod.BOT_TOKEN).start()
    backend = SimBackend(jwt_secret=stack_mod.JWT_SECRET, issuer=stack_mod.ISSUER).start()
    try:
        yield peer, backend
    finally:
        peer.stop()
        backend.stop()


@pytest.fixture
def replicas(pg_url: str, sims: tuple[SlackPeer, SimBackend], tmp_path: Path) -> Iterator[list[Replica]]:
    peer, backend = sims
    # cwd=tmp_path: no .env of the developer's checkout is read.
    upgrade = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=_replica_env(pg_url, peer, backend, "migrator"),
        capture_output=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr.decode(errors="replace")
    started: list[Replica] = []
    try:
        for n in range(1, PROCESSES + 1):
            port, log = _free_port(), tmp_path / f"replica-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=tmp_path,
                    env=_replica_env(pg_url, peer, backend, f"replica-{n}"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(f"replica-{n}", f"http://127.0.0.1:{port}", process, log))
        for replica in started:
            _wait_ready(replica)
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=5)


# Generous: four `opsbot serve` processes importing at once on a loaded 2-core machine take a while.
def _wait_ready(replica: Replica, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            pytest.fail(f"{replica.name} exited with {replica.process.returncode}:\n{replica.tail()}")
        try:
            if httpx.get(replica.url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{replica.name} not ready after {timeout} s:\n{replica.tail()}")


@pytest.fixture
def pg_audit(pg_url: str) -> Iterator[tuple[Engine, AuditLog]]:
    engine = make_engine(pg_url)
    try:
        yield engine, AuditLog(engine, replica="test-reader")
    finally:
        engine.dispose()


def test_fifty_clicks_across_four_replicas_on_postgres_halt_once(
    replicas: list[Replica],
    sims: tuple[SlackPeer, SimBackend],
    pg_audit: tuple[Engine, AuditLog],
) -> None:
    peer, backend = sims
    _, audit = pg_audit
    with SlackSender(bot_url=replicas[0].url, signing_secret=stack_mod.SIGNING_SECRET, peer=peer) as first:
        response = first.command(user=OPERATOR, command="/halt", text="global fat-finger storm", channel=CHANNEL)
    assert response.status_code == 200, response.text
    posted = peer.wait_for_call("chat.postMessage", timeout=10)[-1]
    approval_id = approval_id_of(posted)
    requested = rows_named(audit, approval_id, "halt.requested")
    assert [row.replica for row in requested] == ["replica-1"]
    wait_until(lambda: any(b.get("type") == "actions" for b in peer.channel_messages(CHANNEL)[-1].get("blocks", [])))

    clicks = click_mix(peer, approval_id, latest_message_ts(peer))
    targets = fire(clicks, [r.url + "/slack/events" for r in replicas])

    # Every loser that reached a handler answered "Already handled", ephemeral, to its clicker; the
    # byte-for-byte copies of the replayed click are ignored on every replica (only its first counts).
    losers = CLICKS - REPLAYS
    try:
        wait_until(lambda: len(already_handled(peer)) >= losers, timeout=20)
    except AssertionError:
        logs = "\n".join(f"--- {r.name}\n{r.tail()}" for r in replicas)
        pytest.fail(f"{len(already_handled(peer))} of {losers} losers answered\n{logs}")
    peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args), timeout=10)
    answers = already_handled(peer)
    assert len(answers) == losers
    assert all(a.args.get("response_type") == "ephemeral" for a in answers)

    approved = assert_exactly_once(backend, audit, approval_id)
    assert steps(audit, approval_id) == ["halt.requested:accepted", "halt.approved:accepted", "halt.executed:applied"]
    executed = rows_named(audit, approval_id, "halt.executed")[0]
    assert approved.replica == executed.replica  # the replica that won the claim is the one that ran it

    # Which replicas handled clicks: the winner (from the audit) and every replica that answered a
    # fresh click (each fresh click has its own response_url, sent to one known replica).
    by_url = {c.response_url_id: targets[i] for i, c in enumerate(clicks) if sum(other is c for other in clicks) == 1}
    answered_by = {by_url[a.args["_url_id"]] for a in answers if a.args["_url_id"] in by_url}
    handlers = {f"replica-{i + 1}" for i in answered_by} | {approved.replica}
    assert len(handlers) > 1, handlers
    assert handlers == {r.name for r in replicas}
    assert audit.verify().ok


# -- (b) one process on SQLite -----------------------------------------------------------------


def request_halt_on(stack: Stack, text: str = "global fat-finger storm") -> tuple[str, str]:
    before = len(stack.peer.calls_to("chat.postMessage"))
    response = stack.sender.command(user=OPERATOR, command="/halt", text=text, channel=CHANNEL)
    assert response.status_code == 200, response.text
    posted = stack.peer.wait_for_call("chat.postMessage", count=before + 1)[-1]
    approval_id = approval_id_of(posted)
    wait_until(lambda: bool((row := stack.deps.approvals.get(approval_id=approval_id)) and row.message_ts))
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.message_ts
    return approval_id, row.message_ts


def test_fifty_concurrent_clicks_on_sqlite_halt_once(stack: Stack) -> None:
    approval_id, ts = request_halt_on(stack)
    fire(click_mix(stack.peer, approval_id, ts), [stack.sender.events_url])
    # The replayed click counts once; its other copies are acknowledged and ignored, audited once.
    wait_until(lambda: len(already_handled(stack.peer)) >= CLICKS - REPLAYS, timeout=20)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    assert len(already_handled(stack.peer)) == CLICKS - REPLAYS
    wait_until(lambda: [r.action for r in stack.deps.audit.rows()].count("request.replayed") == 1)
    assert_exactly_once(stack.backend, stack.deps.audit, approval_id)
    assert stack.deps.audit.verify().ok


# -- (c) the backend down, slow or failing -----------------------------------------------------


def approve(stack: Stack, approval_id: str, ts: str, user: str = HALT_A) -> None:
    response = stack.sender.click(user=user, action_id="approve", value=approval_id, channel=CHANNEL, message_ts=ts)
    assert response.status_code == 200, response.text


def wait_status(stack: Stack, approval_id: str, *statuses: str, timeout: float = 10.0) -> str:
    def settled() -> bool:
        row = stack.deps.approvals.get(approval_id=approval_id)
        return row is not None and row.status in statuses

    wait_until(settled, timeout=timeout)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None
    return row.status


def _down(stack: Stack) -> Callable[[], None]:
    port = int(stack.backend.url.rsplit(":", 1)[1])
    stack.backend.stop()

    def restore() -> None:  # the same address and keys, as a restarted backend would have
        stack.backend = SimBackend(jwt_public_key=stack.auth.public_pem(), issuer=stack_mod.ISSUER, port=port).start()

    return restore


def _dropped(stack: Stack) -> Callable[[], None]:
    stack.backend.faults.drop_connection = True
    return lambda: setattr(stack.backend.faults, "drop_connection", False)


def _slow(stack: Stack) -> Callable[[], None]:
    short_timeouts(stack)
    stack.backend.faults.latency_s = 1.0  # well past the 0.3 s timeouts

    def restore() -> None:
        stack.backend.faults.latency_s = 0.0

    return restore


def _http_500(stack: Stack) -> Callable[[], None]:
    stack.backend.faults.fail_status = 500
    return lambda: setattr(stack.backend.faults, "fail_status", None)


FAULTS: dict[str, tuple[Callable[[Stack], Callable[[], None]], str]] = {
    "down": (_down, "no answer"),
    "dropped": (_dropped, "connection dropped"),
    "slow": (_slow, "timed out"),
    "http_500": (_http_500, "HTTP 500"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_backend_fault_keeps_the_request_pending_and_a_retry_applies_it_once(stack: Stack, fault: str) -> None:
    break_it, shown = FAULTS[fault]
    approval_id, ts = request_halt_on(stack)
    revision = stack.backend.control()["revision"]
    fix = break_it(stack)

    approve(stack, approval_id, ts)
    # Refused at connect, the halt surely did not apply; after a timeout, a drop or a 5xx it may have.
    said = "Halt NOT applied" if fault == "down" else "Halt NOT confirmed"
    failed_update = stack.peer.wait_for_call("chat.update", where=lambda c: said in text_of(c.args), timeout=10)[-1]
    wait_status(stack, approval_id, "pending")
    text = text_of(failed_update.args)
    assert said in text and shown in text
    assert "Still pending" in text and "approve again to retry" in text and "same idempotency key" in text
    assert f"Approved by <@{HALT_A}> at 20" in text  # who tried, and when, stay on the message
    failed = rows_named(stack.deps.audit, approval_id, "halt.failed")
    assert len(failed) == 1 and failed[0].outcome == "failed" and failed[0].detail
    assert not rows_named(stack.deps.audit, approval_id, "halt.executed")
    if fault == "down":
        assert halt_posts(stack.backend) == 0  # refused at connect: the backend never saw it

    fix()
    if fault == "slow":  # the timed-out write lands late; the retry must not apply it a second time
        time.sleep(1.2)
    approve(stack, approval_id, ts)  # "approve again to retry": the same halt authority clicks again
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args), timeout=10)
    assert wait_status(stack, approval_id, "executed") == "executed"

    control = stack.backend.control()
    assert control["global"]["halted"] is True
    if fault != "down":  # a restarted backend starts its own revision count
        assert control["revision"] == revision + 1  # applied once, whatever reached the backend before
    keys = {call.headers["idempotency-key"] for call in stack.backend.calls("POST", HALT_PATH)}
    assert keys == {f"{approval_id}:halt"}
    executed = rows_named(stack.deps.audit, approval_id, "halt.executed")
    assert len(executed) == 1 and executed[0].outcome == "applied"
    assert [s for s in steps(stack.deps.audit, approval_id) if s.startswith(("halt.approved", "halt.failed"))] == [
        "halt.approved:accepted",
        "halt.failed:failed",
        "halt.approved:accepted",
    ]
    assert "Applied" in message_text(stack, ts)


def test_backend_that_accepts_but_does_not_apply_is_trigger_three(stack: Stack) -> None:
    approval_id, ts = request_halt_on(stack)
    stack.backend.faults.halt_not_applied = True
    approve(stack, approval_id, ts)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "NOT APPLIED" in text_of(c.args))[-1]
    assert wait_status(stack, approval_id, "failed") == "failed"
    text = text_of(update.args)
    assert "HALT NOT APPLIED" in text and "hard rollback trigger 3" in text
    assert "Still pending" not in text
    failed = rows_named(stack.deps.audit, approval_id, "halt.failed")
    assert len(failed) == 1 and failed[0].outcome == "not_applied"
    assert halt_posts(stack.backend) == 1
    assert stack.backend.control()["global"]["halted"] is False
    # Not retryable: another click is "Already handled", and nothing more reaches the backend.
    approve(stack, approval_id, ts, user=HALT_B)
    wait_until(lambda: len(already_handled(stack.peer)) == 1)
    assert halt_posts(stack.backend) == 1


def test_retry_by_another_authority_after_a_late_write_applies_once(stack: Stack) -> None:
    approval_id, ts = request_halt_on(stack)
    restore = _slow(stack)
    approve(stack, approval_id, ts, user=HALT_A)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Halt NOT confirmed" in text_of(c.args), timeout=10)
    wait_status(stack, approval_id, "pending")
    restore()
    time.sleep(1.2)  # the timed-out write lands
    approve(stack, approval_id, ts, user=HALT_B)
    assert wait_status(stack, approval_id, "executed", "failed") == "executed"
