"""The server plumbing the local stand-ins share: an HTTP server on loopback in a daemon thread.

A stand-in subclasses `LoopbackServer` (start/stop, context manager, `url`) and serves requests
with a `LoopbackHandler` subclass, which reaches the stand-in as `self.owner`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

__all__ = ["LoopbackHandler", "LoopbackServer", "wait_for_interrupt"]

OwnerT = TypeVar("OwnerT")


class _BoundServer(ThreadingHTTPServer, Generic[OwnerT]):
    daemon_threads = True
    owner: OwnerT


class LoopbackHandler(BaseHTTPRequestHandler, Generic[OwnerT]):
    """Answers GET and POST through `serve(method)`; request lines go to `sim_logger` at debug level."""

    sim_logger: ClassVar[logging.Logger] = logging.getLogger("opsbot.sim")
    log_format: ClassVar[str] = "sim %s"  # how `log_message` lines read

    @property
    def owner(self) -> OwnerT:
        """The stand-in (the `LoopbackServer`) this request is served for."""
        return cast("_BoundServer[OwnerT]", self.server).owner

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def serve(self, method: str) -> None:
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        self.sim_logger.debug(self.log_format, format % args)

    def read_body(self, *, strict: bool = False) -> bytes:
        """The request body, `content-length` bytes; a malformed length reads as no body, or with
        `strict` raises ValueError."""
        try:
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        except ValueError:
            if strict:
                raise
            return b""

    def send_payload(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        """A complete answer: status line, `headers` in their order, then `payload`."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def send_or_drop(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
        """`send_payload`, tolerating a client that went away first (e.g. after a client timeout)."""
        try:
            self.send_payload(status, headers, payload)
        except (BrokenPipeError, ConnectionResetError):
            self.sim_logger.debug("sim: client went away before the answer")


class LoopbackServer:
    """Owns a threading HTTP server on (`host`, `port`) and the daemon thread serving it.

    `start()` binds (port 0 picks a free port) and sets `url`; `stop()` shuts the server down, and
    first sets `_stopping` so requests waiting on it (simulated latency) wake up.
    """

    def __init__(self, handler: type[LoopbackHandler[Any]], *, host: str, port: int, thread_name: str) -> None:
        self.url = ""
        self._address = (host, port)
        self._handler_class = handler
        self._thread_name = thread_name
        self._stopping = threading.Event()
        self._server: _BoundServer[Self] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._stopping.clear()
        server: _BoundServer[Self] = _BoundServer(self._address, self._handler_class)
        server.owner = self
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        # A short poll interval keeps stop() fast; tests start and stop many servers.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping on simulated latency
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _pause(self, seconds: float) -> None:
        """Simulated latency: sleep `seconds` (if positive), cut short by `stop()`."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C: how the stand-ins' command lines serve."""
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
