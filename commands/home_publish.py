"""Publishing the App Home (views.publish): when a person opens it, and again after every action.

"After every action": every action the bot takes is an audit row, so the leader's monitor thread
watches the audit head (one cheap query a second) and, when it moved, re-publishes the home of
everyone who opened it in the last day, reading the facts once for all of them. The refresh runs
on its own thread, so a slow backend never holds up the watchers. `refresh(deps, user)` is the
helper for code that wants one person's home re-published at once.

What a click on the home led to must survive those refreshes (a refresh follows every click, since
the click is audited): a decision's outcome comes from the approval table (bot.home.facts, so any
process's refresh shows it); a refused click's notice, which is not a decision, is remembered in
this process for NOTICE_FOR and shown on every publish of that person's home until then.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.approvals.policy import Role
from bot.audit.log import SYSTEM, Entry
from bot.home.facts import HomeSource
from bot.home.model import HomeFacts
from bot.monitoring.store import MonitoringStore
from bot.text import when
from commands.deps import Deps
from commands.views.home import home_view
from commands.webapi.refusals import refusal_of

log = logging.getLogger("opsbot.home")

VIEWERS_FOR = timedelta(days=1)
NOTICE_FOR = timedelta(minutes=5)
_notices: dict[str, tuple[str, datetime]] = {}  # user -> (the notice of their last refused click, when)
_refusals: dict[tuple[int, str, str], datetime] = {}  # (audit log, user, error) -> when last audited
_notices_lock = threading.Lock()


class HomePublisher:
    def __init__(self, deps: Deps, source: HomeSource | None = None) -> None:
        self.deps = deps
        self.source = source or deps.home
        self.store = MonitoringStore(deps.engine, deps.audit)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbot-home")
        self._lock = threading.Lock()
        self._running: Future[int] | None = None
        self._seen_head: int | None = None

    def publish(self, user_id: str, *, notice: str | None = None, facts: HomeFacts | None = None) -> bool:
        facts = facts if facts is not None else self.source.facts()
        notice = notice or _notice_for(user_id, facts.now)
        roles = frozenset(role.value for role in Role if self.deps.directory.has(user_id, role))
        view = home_view(facts, viewer=user_id, roles=roles, notice=notice)
        try:
            self.deps.slack.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            refusal = refusal_of(exc)
            log.warning("App Home of %s not published: %s", user_id, refusal.error)
            if refusal.permanent and _first_refusal((id(self.deps.audit), user_id, refusal.error), facts.now):
                self.deps.audit.record(
                    Entry(
                        SYSTEM,
                        "home.publish_refused",
                        "failed",
                        {"user": user_id, "error": refusal.error},
                        detail=refusal.text,
                    )
                )
            return False
        return True

    def clicked(self, user_id: str, notice: str | None) -> bool:
        """After a click on the home: remember its notice (None: it was a decision, which the facts
        show) and publish at once."""
        with _notices_lock:
            if notice:
                _notices[user_id] = (notice, self.deps.now())
            else:
                _notices.pop(user_id, None)
        return self.publish(user_id)

    def opened(self, user_id: str) -> bool:
        """app_home_opened: remember the viewer (for later refreshes) and publish their home."""
        self.store.touch_viewer(user_id, self.deps.now())
        return self.publish(user_id)

    def refresh_all(self) -> int:
        viewers = self.store.viewers(self.deps.now() - VIEWERS_FOR)
        if not viewers:
            return 0
        facts = self.source.facts()
        return sum(self.publish(user, facts=facts) for user in viewers)

    def poll(self) -> None:
        """The monitor's quick job: start a refresh when the audit head moved and none is running."""
        with self._lock:
            if self._running is not None and not self._running.done():
                return
            head = self.store.audit_head()
            if head == self._seen_head:
                return
            first = self._seen_head is None
            self._seen_head = head
            if not first:  # at start-up there is nothing new to show anyone
                self._running = self._pool.submit(self._refresh_logged)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _refresh_logged(self) -> int:
        try:
            return self.refresh_all()
        except Exception:
            log.exception("App Home refresh failed")
            return 0


def _first_refusal(key: tuple[int, str, str], now: datetime) -> bool:
    """Whether this refusal of this person's home (key: audit log, user, Slack error) is news. Audited
    once per NOTICE_FOR: the audit row itself triggers a refresh, which Slack would refuse again."""
    with _notices_lock:
        last = _refusals.get(key)
        if last is not None and now - last <= NOTICE_FOR:
            return False
        _refusals[key] = now
        return True


def _notice_for(user_id: str, now: datetime) -> str | None:
    with _notices_lock:
        found = _notices.get(user_id)
    if found is None or now - found[1] > NOTICE_FOR:
        return None
    return f"{found[0]} _({when(found[1])})_"


def refresh(deps: Deps, user_id: str, *, notice: str | None = None) -> bool:
    """Re-publish one person's App Home now (e.g. right after an action they took there)."""
    return HomePublisher(deps).publish(user_id, notice=notice)
