"""The cutover freeze a rollback sets: idempotent per owner, lifted explicitly, on both stores."""

from __future__ import annotations

from bot.rollback.freeze import FreezeStore
from bot.storage.db import make_engine, utcnow
from bot.storage.migrate import upgrade


def test_freeze_is_idempotent_and_lifted_only_by_its_owner(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    store = FreezeStore(engine)
    assert store.active() is None
    store.freeze(owner="rb_1", reason="rollback in progress", now=utcnow())
    store.freeze(owner="rb_1", reason="rollback in progress", now=utcnow())  # a retried step
    active = store.active()
    assert active is not None and active.owner == "rb_1"
    assert store.lift(owner="rb_other", by="U1", now=utcnow()) is False
    assert store.active() is not None
    assert store.lift(owner="rb_1", by="U1", now=utcnow()) is True
    assert store.active() is None
    engine.dispose()
