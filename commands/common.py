"""What every listener group shares: who is asking, where, under which request id, and the one
place where typed errors become ephemeral answers and audit rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt import Ack, App, Respond
from slack_sdk.errors import SlackApiError

from bot.approvals.errors import NotAllowed
from bot.audit.log import Actor, Entry
from bot.audit.replays import current_key, replay_entry
from bot.errors import OpsbotError
from bot.ids import request_id_for
from bot.logs import current_request_id
from bot.text import safe
from commands.deps import Deps
from commands.errors import operator_message
from commands.grammar.usage import UsageError
from commands.webapi.refusals import SlackRefusal, refusal_of

log = logging.getLogger("opsbot.commands")

ECHO_MAX = 80


@dataclass(frozen=True)
class Invocation:
    """One slash command or click, as the handlers see it."""

    actor: Actor
    channel: str
    request_id: str
    command: str
    text: str
    # Which signed request this is (bot.audit.replays), when it came over HTTP; None in Socket Mode.
    replay_key: str | None = None

    @classmethod
    def from_command(cls, body: Mapping[str, Any]) -> Invocation:
        return cls(
            actor=Actor(str(body.get("team_id", "")), str(body.get("user_id", ""))),
            channel=str(body.get("channel_id", "")),
            request_id=request_id_for(body),
            command=str(body.get("command", "")),
            text=str(body.get("text", "")),
            replay_key=current_key.get(),
        )

    @classmethod
    def from_action(cls, body: Mapping[str, Any]) -> Invocation:
        user = body.get("user") or {}
        team = body.get("team") or {}
        channel = body.get("channel") or {}
        return cls(
            actor=Actor(str(team.get("id", user.get("team_id", ""))), str(user.get("id", ""))),
            channel=str(channel.get("id", "")),
            request_id=request_id_for(body),
            command="",
            text="",
            replay_key=current_key.get(),
        )


def ephemeral(respond: Respond, text: str, *, blocks: list[dict[str, object]] | None = None) -> None:
    respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)


def usage_answer(exc: UsageError, text: str) -> str:
    """The usage, with a bounded, escaped echo of what was typed."""
    echo = f"\nYou typed: `{safe(text, ECHO_MAX)}`" if text.strip() else ""
    return operator_message(exc) + echo


def answer_for(exc: OpsbotError, text: str) -> str:
    return usage_answer(exc, text) if isinstance(exc, UsageError) else operator_message(exc)


def audit_refusal(deps: Deps, inv: Invocation, action: str, exc: OpsbotError) -> None:
    outcome = "invalid" if isinstance(exc, UsageError) else "denied"
    reason = exc.problem if isinstance(exc, UsageError) else exc.reason if isinstance(exc, NotAllowed) else str(exc)
    params = {"text": inv.text[:200], "text_length": len(inv.text)}
    deps.audit.record(Entry(inv.actor, f"{action}.refused", outcome, params, inv.request_id, "", inv.channel, reason))
    deps.metrics.commands.labels(inv.command or action, outcome).inc()


@contextmanager
def request_scope(inv: Invocation) -> Iterator[None]:
    token = current_request_id.set(inv.request_id)
    try:
        yield
    finally:
        current_request_id.reset(token)


def guarded(
    deps: Deps,
    inv: Invocation,
    respond: Respond,
    action: str,
    work: Callable[[], None],
    *,
    checked_in_ack: Callable[[], object] | None = None,
    replay_checked_here: bool = True,
) -> None:
    """Run the slow part of a handler; any typed error becomes an ephemeral answer plus an audit row.

    `checked_in_ack` is the parse-and-authorise step the ack already ran and answered: a refusal
    from it is only audited here, so the person is not told twice. A replayed request stops here,
    unless the work takes the replay check itself (`replay_checked_here=False`: the break-glass,
    which bounds its store calls and does not wait for a hung store).
    """
    with request_scope(inv):
        if replay_checked_here and not first_take_or_unknown(deps, inv):
            return
        try:
            if checked_in_ack is not None:
                checked_in_ack()
        except (UsageError, NotAllowed) as exc:
            audit_refusal(deps, inv, action, exc)
            return
        try:
            work()
        except OpsbotError as exc:
            if isinstance(exc, UsageError | NotAllowed):
                audit_refusal(deps, inv, action, exc)
            ephemeral(respond, answer_for(exc, inv.text))
        except SlackApiError as exc:
            refusal = refusal_of(exc, channel=inv.channel)
            log.warning("Slack refused a call in %s: %s", action, refusal.error)
            _audit_slack_refusal(deps, inv, action, refusal)
            then = "Fix that, then try again." if refusal.permanent else "Try again in a moment."
            ephemeral(
                respond,
                f":warning: Slack did not accept the bot's message: {refusal.text} The request was "
                f"cancelled and nothing was done. {then} Request id `{inv.request_id}`.",
            )
        except Exception:
            log.exception("unexpected failure in %s", action)
            _audit_crash(deps, inv, action)
            ephemeral(respond, f":x: Something went wrong; nothing further was done. Request id `{inv.request_id}`.")


def _audit_slack_refusal(deps: Deps, inv: Invocation, action: str, refusal: SlackRefusal) -> None:
    params = {"error": refusal.error, "permanent": refusal.permanent}
    try:
        deps.audit.record(
            Entry(inv.actor, f"{action}.slack_refused", "failed", params, inv.request_id, "", inv.channel, refusal.text)
        )
    except OpsbotError:
        log.exception("audit unavailable while recording a Slack refusal")


def _audit_crash(deps: Deps, inv: Invocation, action: str) -> None:
    try:
        deps.audit.record(Entry(inv.actor, f"{action}.error", "failed", {}, inv.request_id, "", inv.channel))
    except OpsbotError:
        log.exception("audit unavailable while recording a failure")


Planned = TypeVar("Planned")


def register_command(
    app: App,
    deps: Deps,
    *,
    name: str,
    action: str,
    plan: Callable[[Invocation], Planned],
    work: Callable[[Invocation, Respond], None],
    ack_text: Callable[[Invocation, Planned], str | None] | None = None,
    critical: Callable[[Planned], bool] | None = None,
    claims_replay: Callable[[Planned], bool] | None = None,
) -> None:
    """A slash command in two halves: the ack parses and authorises (pure, in memory) and answers
    refusals and usage at once; the lazy half, after the ack, does the store, backend and Slack work.
    `critical` picks the commands that run on the kill-switch executor (halts and resumes);
    `claims_replay` those whose work takes the replay check itself (see `guarded`)."""

    def ack_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        inv = Invocation.from_command(command)
        planned: Planned | None = None
        try:
            planned = plan(inv)
        except OpsbotError as exc:
            ack(response_type="ephemeral", text=answer_for(exc, inv.text))
        else:
            text = ack_text(inv, planned) if ack_text else None
            if text:
                ack(response_type="ephemeral", text=text)
            else:
                ack()
        urgent = planned is not None and critical is not None and critical(planned)
        own_check = planned is not None and claims_replay is not None and claims_replay(planned)
        after_ack(
            deps,
            lambda: guarded(
                deps,
                inv,
                respond,
                action,
                lambda: work(inv, respond),
                checked_in_ack=lambda: plan(inv),
                replay_checked_here=not own_check,
            ),
            critical=urgent,
        )

    app.command(name)(ack_command)


def after_ack(deps: Deps, work: Callable[[], object], *, critical: bool = False) -> None:
    """Queue work to run once the ack is answered. Bolt's lazy listeners would do the same, but copy
    the whole request (with a Slack client) first, which costs the ack more than the command itself.
    Critical work (halts, resumes, approval clicks) has its own executor, so no read, probe or
    monitoring job queued on the shared one can delay it."""
    (deps.critical if critical else deps.workers).submit(work)


def first_take_or_unknown(deps: Deps, inv: Invocation) -> bool:
    try:
        return first_take(deps, inv)
    except OpsbotError as exc:
        # The store is out: the same replica's front already stopped replays, and any work that needs
        # the store fails closed on its own; a read such as `/halt status` still answers.
        log.warning("replay check skipped: %s", exc)
        return True


def first_take(deps: Deps, inv: Invocation) -> bool:
    """False when this signed request was already taken (here or on another replica): it is then
    audited as a replay, once, and must be ignored. Raises StoreUnavailable like any store call."""
    if inv.replay_key is None or deps.replays.claim(inv.replay_key):
        return True
    what = f"{inv.command} {inv.text}".strip() or "click"
    deps.replays.note_replay(
        inv.replay_key, replay_entry(inv.replay_key, actor=inv.actor, what=what, channel=inv.channel)
    )
    deps.metrics.denied.labels("replay").inc()
    return False
