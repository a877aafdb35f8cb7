"""Isolation and bounds of the kill switch: idle connections, a trickling backend, reads in flight."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.storage.db import make_engine
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, HALT_A, OPERATOR, short_timeouts, text_of, wait_until


@pytest.fixture
def idle_sockets(stack: Stack) -> Iterator[list[socket.socket]]:
    host, port = stack.server.url.removeprefix("http://").split(":")
    opened: list[socket.socket] = []
    try:
        for _ in range(250):  # each sends half a request and then nothing
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\ncommand=")
            opened.append(s)
        yield opened
    finally:
        for s in opened:
            s.close()


def test_signed_requests_are_answered_with_250_idle_half_open_connections(
    stack: Stack, idle_sockets: list[socket.socket]
) -> None:
    time.sleep(0.3)  # let the server take them all
    started = time.monotonic()
    assert httpx.get(stack.server.url + "/healthz", timeout=2).status_code == 200
    response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: len(stack.backend.calls("POST", "/api/trading-control/halt")) == 1, timeout=5)
    assert time.monotonic() - started < 3.0  # refused or never answered without the limits


def halts_at(stack: Stack) -> float:
    return stack.backend.calls("POST", "/api/trading-control/halt")[0].at


def test_a_break_glass_is_not_queued_behind_reads_from_a_trickling_backend(stack: Stack) -> None:
    stack.backend.faults.trickle_s = 1.5  # one byte every 1.5 s: no per-read timeout ever fires
    with ThreadPoolExecutor(max_workers=32) as pool:
        for _ in range(32):
            pool.submit(stack.sender.command, user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
        wait_until(lambda: len(stack.backend.calls("GET", "/api/trading-control")) >= 32, timeout=10)
    sent = time.time()
    stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
    wait_until(lambda: bool(stack.backend.calls("POST", "/api/trading-control/halt")), timeout=5)
    assert halts_at(stack) - sent < 1.0  # queued behind the reads it would wait out their 6.5 s deadline


def test_a_trickling_backend_is_cut_off_at_the_calls_total_deadline(stack: Stack) -> None:
    short_timeouts(stack)  # 0.3 s per read: a byte every 0.2 s passes each read, not the call's deadline
    stack.backend.faults.trickle_s = 0.2
    started = time.monotonic()
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    answer = stack.peer.wait_for_call("response_url", timeout=5)[-1]
    assert "timed out" in text_of(answer.args) or "did not answer" in text_of(answer.args), text_of(answer.args)
    assert time.monotonic() - started < 3.0  # deadline 3 x 0.3 s + 0.5 s, far below the ~60 s the trickle takes


def test_readiness_never_waits_for_a_hung_store(stack: Stack) -> None:
    """A store that accepts the connection and then says nothing (a stopped server): /readyz answers
    from its cache, at once, and says the store is not reachable once the background check gives up."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(50)
    stack.deps.engine = make_engine(f"postgresql+psycopg://x:y@127.0.0.1:{hole.getsockname()[1]}/none")
    stack.deps.engine.dispose()
    try:
        with httpx.Client(timeout=3) as client:
            client.get(stack.server.url + "/readyz")
            time.sleep(2.1)  # the cached answer expires; the next check starts and hangs on the hole
            started = time.monotonic()
            states = {client.get(stack.server.url + "/readyz").status_code for _ in range(10)}
            assert time.monotonic() - started < 1.0
            wait_until(lambda: client.get(stack.server.url + "/readyz").status_code == 503, timeout=6)
    finally:
        hole.close()
    assert states <= {200, 503}
