"""The notifier: delivers the outbox (bot.approvals.outbox) to Slack, after the fact and off every decision's path.

Per stream, rows go out in order; streams go out side by side on a few threads, so one slow message
holds up only its own stream. A 429 pauses only its method (chat.postMessage, chat.update) for the
Retry-After Slack asked for; other faults are retried with a capped backoff until a row is older
than `give_up_after`, when it is given up, audited and listed on the App Home. Rows are claimed with
a lease in the store, so across replicas each is sent by one of them, and a restart resumes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackObjectFormationError

from bot.approvals.outbox import DELIVERED, GIVEN_UP, METHOD, Outbox, payload_of
from bot.audit.log import SYSTEM, AuditLog, Entry
from bot.settings import Settings
from bot.storage.db import as_utc
from bot.storage.errors import StoreUnavailable
from bot.storage.models import OutboxRow
from commands.views.blocks import render
from commands.webapi.refusals import refusal_of

log = logging.getLogger("opsbot.notifier")

# Which Slack errors are worth another try, and what a final one means to an operator: commands.webapi.refusals.


@dataclass(frozen=True)
class NotifierConfig:
    workers: int = 4
    idle_poll_s: float = 1.0  # how often rows of other replicas or due retries are looked for
    # A replica dying mid-send frees its rows after this: well over one send (a 5 s Slack timeout).
    claim_lease: timedelta = timedelta(seconds=15)
    first_retry: timedelta = timedelta(seconds=1)
    max_retry: timedelta = timedelta(seconds=30)
    give_up_after: timedelta = timedelta(minutes=30)
    slack_timeout_s: float = 5.0


class Retry(Exception):
    def __init__(self, error: str, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error, self.retry_after = error, retry_after


class Final(Exception):
    def __init__(self, text: str, code: str = "") -> None:
        super().__init__(text)
        self.code = code  # Slack's error code, for the hooks (the text is for people)


class Notifier:
    def __init__(
        self,
        *,
        outbox: Outbox,
        settings: Settings,
        audit: AuditLog,
        http: httpx.Client,
        replica: str,
        config: NotifierConfig | None = None,
        slack: WebClient | None = None,
    ) -> None:
        self.outbox, self.audit, self.http, self.replica = outbox, audit, http, replica
        self.config = config or NotifierConfig()
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        # No retry handlers: a client that sleeps out Retry-After would hold a worker; we reschedule.
        self.slack = slack or WebClient(
            token=token,
            base_url=settings.slack_api_url,
            timeout=int(max(1, self.config.slack_timeout_s)),
            retry_handlers=[],
        )
        self._blocked: dict[str, datetime] = {}  # Slack method -> not before
        self._lock = threading.Lock()
        # Held from reading `_blocked` to claiming, and from a 429 to rescheduling its row, so a claim
        # never slips a row of a paused method through between the two.
        self._pacing = threading.Lock()
        self._inflight = 0
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="opsbot-notify")
        self._thread = threading.Thread(target=self._run, name="opsbot-notifier", daemon=True)

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.outbox.wake()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.outbox.wakeup.clear()
            try:
                claimed = self._round()
            except Exception:
                log.exception("outbox claim failed; trying again")
                claimed = 0
            if not claimed:
                self.outbox.wakeup.wait(self.config.idle_poll_s)

    def _round(self) -> int:
        with self._lock:
            free = self.config.workers - self._inflight
        if free <= 0:
            return 0
        with self._pacing:
            now = self.outbox.now()
            blocked = frozenset(kind for kind, method in METHOD.items() if self._blocked.get(method, now) > now)
            rows = self.outbox.claim(
                now=now, replica=self.replica, lease=self.config.claim_lease, limit=free, blocked=blocked
            )
        for row in rows:
            with self._lock:
                self._inflight += 1
            self._pool.submit(self._deliver_and_release, row)
        return len(rows)

    def _deliver_and_release(self, row: OutboxRow) -> None:
        try:
            self.deliver(row)
        except Exception:
            log.exception("outbox row %s: delivery failed unexpectedly", row.id)
        finally:
            with self._lock:
                self._inflight -= 1
            self.outbox.wake()

    def deliver(self, row: OutboxRow) -> None:
        """Send one claimed row, then record delivered / retry later / given up."""
        try:
            ts = self._send(row)
        except Retry as exc:
            self._later(row, exc)
        except Final as exc:
            self._give_up(row, str(exc), code=exc.code)
        else:
            if self._delivered(row, ts) and ts and row.kind in ("post", "update"):
                for hook in self.outbox.on_posted:
                    _quietly(hook, row.stream, ts)

    def _delivered(self, row: OutboxRow, ts: str | None) -> bool:
        """Record a delivery, riding out a briefly locked store: unrecorded, the row would be sent again."""
        for delay in (0.2, 0.5, 1.0, 2.0, 4.0, None):
            try:
                return self.outbox.finish(row, status=DELIVERED, now=self.outbox.now(), replica=self.replica, ts=ts)
            except StoreUnavailable as exc:
                log.warning("outbox row %s delivered but not recorded yet: %s", row.id, exc)
                if delay is None or self._stop.wait(delay):
                    return False
        return False

    def _later(self, row: OutboxRow, exc: Retry) -> None:
        now = self.outbox.now()
        method = METHOD[row.kind]
        if exc.retry_after is not None:  # Slack said when: that method waits, for every row of it
            at = now + timedelta(seconds=exc.retry_after)
        else:
            at = now + min(self.config.max_retry, self.config.first_retry * (2 ** min(row.attempts - 1, 16)))
        if at - as_utc(row.created_at) > self.config.give_up_after:
            self._give_up(row, exc.error, why=f"still failing after {self.config.give_up_after}: ")
            return
        log.info("outbox row %s (%s): %s; retrying at %s", row.id, method, exc.error, at.isoformat())
        with self._pacing:
            if exc.retry_after is not None:
                self._blocked[method] = max(self._blocked.get(method, now), at)
            self.outbox.retry_at(row, at=at, error=exc.error, replica=self.replica)

    def _give_up(self, row: OutboxRow, error: str, *, why: str = "", code: str = "") -> None:
        """`error` is what the App Home and the audit show, `why` how it came to this, `code` Slack's error
        code for the hooks (`error` itself when not given)."""
        log.error("outbox row %s (%s in %s) given up: %s%s", row.id, METHOD[row.kind], row.channel, why, error)
        if not self.outbox.finish(row, status=GIVEN_UP, now=self.outbox.now(), replica=self.replica, error=why + error):
            return
        if row.kind == "post":
            for hook in self.outbox.on_given_up:
                try:
                    hook(row, code or error)
                except Exception:
                    log.exception("outbox hook failed for %s", row.stream)
        params = {"stream": row.stream, "kind": row.kind, "method": METHOD[row.kind], "outbox_id": row.id}
        approval_id = row.stream.removeprefix("approval:") if row.stream.startswith("approval:") else ""
        try:
            self.audit.record(
                Entry(SYSTEM, "slack.undelivered", "failed", params, "", approval_id, row.channel, (why + error)[:500])
            )
        except Exception:
            log.exception("could not audit the undelivered outbox row %s", row.id)

    # -- one Slack call per row ------------------------------------------------------------------

    def _send(self, row: OutboxRow) -> str | None:
        payload = payload_of(row)
        if row.kind == "respond":
            self._respond(str(payload["url"]), payload)
            return None
        args: dict[str, Any] = {"channel": row.channel, "text": payload["text"]}
        blocks = _drawn(payload)
        if blocks is not None:
            args["blocks"] = blocks
        parent = self.outbox.stream_ts(row.stream) if row.kind in ("update", "reply") else None
        if row.kind == "update" and parent:
            return self._call("chat_update", ts=parent, **args)
        if row.kind == "reply" and parent:
            args.update(thread_ts=parent, reply_broadcast=bool(payload.get("broadcast")))
        # A post; or an update / reply whose message never got posted (given up): it goes out on its own.
        return self._call("chat_postMessage", **args)

    def _call(self, method: str, **args: Any) -> str | None:
        try:
            answer = getattr(self.slack, method)(**args)
        except SlackApiError as exc:
            refusal = refusal_of(exc)
            if exc.response.status_code == 429 or refusal.error == "ratelimited":
                raise Retry("ratelimited", _retry_after(exc.response.headers)) from exc
            if refusal.retryable:
                raise Retry(refusal.error) from exc
            raise Final(f"`{refusal.error}`: {refusal.text}", refusal.error) from exc
        except OSError as exc:  # unreachable, reset, timed out (urllib's errors are OSErrors)
            raise Retry(type(exc).__name__) from exc
        ts = answer.get("ts")
        return str(ts) if ts else None

    def _respond(self, url: str, payload: dict[str, Any]) -> None:
        body = {"text": payload["text"], "response_type": "ephemeral", "replace_original": False}
        blocks = _drawn(payload)
        if blocks is not None:
            body["blocks"] = blocks
        try:
            answer = self.http.post(url, json=body, timeout=self.config.slack_timeout_s)
        except httpx.HTTPError as exc:
            raise Retry(type(exc).__name__) from exc
        if answer.status_code == 429:
            raise Retry("ratelimited", _retry_after(answer.headers))
        if answer.status_code >= 500:
            raise Retry(f"HTTP {answer.status_code}")
        if answer.status_code >= 400:  # expired or used up: Slack will never take it
            raise Final(f"response_url refused: HTTP {answer.status_code}")


def blocks_of(payload: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A note's blocks: as queued (rows written before views), else drawn from its view and data now."""
    if payload.get("blocks") is not None:
        return list(payload["blocks"])
    view = payload.get("view")
    return render(str(view), payload.get("data") or {}) if view else None


def _drawn(payload: dict[str, Any]) -> list[dict[str, Any]] | None:
    try:
        return blocks_of(payload)
    except (KeyError, TypeError, ValueError, SlackObjectFormationError) as exc:  # it would fail every time
        raise Final(f"the message could not be drawn: {type(exc).__name__}: {exc}", "invalid_blocks") from exc


def _retry_after(headers: Any) -> float:
    for key in ("Retry-After", "retry-after"):
        value = headers.get(key) if headers else None
        if value is not None:
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except ValueError:
                break
    return 1.0


def _quietly(hook: Callable[[str, str], None], stream: str, value: str) -> None:
    try:
        hook(stream, value)
    except Exception:
        log.exception("outbox hook failed for %s", stream)
