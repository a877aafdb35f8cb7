"""`/gate`: evaluate the release go/no-go (one message that fills in), attest manual checks, history."""

from __future__ import annotations

import logging

from slack_bolt import App, Respond
from slack_sdk.errors import SlackApiError

from bot.approvals.policy import check_request, people_of
from bot.audit.log import Entry
from bot.errors import OpsbotError
from bot.gate.engine import ItemOutcome, gate_items
from bot.gate.models import Attestation
from bot.gate.service import Evaluation, GateService
from bot.text import safe
from commands.common import Invocation, ephemeral, register_command
from commands.deps import Deps
from commands.grammar.gate import Attest, Evaluate, GateCommand, History, parse
from commands.views.blocks import as_dicts
from commands.views.gate import GateCard, gate_blocks, history_text

log = logging.getLogger("opsbot.commands.gate")

ACTIONS = {Evaluate: "gate", Attest: "gate.attest", History: "gate.history"}


def plan(deps: Deps, inv: Invocation) -> GateCommand:
    """Parse and authorise; pure and fast, so the ack and the work after it agree."""
    command = parse(inv.text, deps.runbook)
    check_request(deps.directory, user_id=inv.actor.user_id, action=ACTIONS[type(command)], channel=inv.channel)
    return command


def register(app: App, deps: Deps) -> None:
    service = deps.gate

    def ack_text(inv: Invocation, planned: GateCommand) -> str | None:
        if not isinstance(planned, Evaluate):
            return None
        return (
            f":hourglass_flowing_sand: Evaluating the release go/no-go; the result fills in below within "
            f"{service.deadline_s:g} s. Request id `{inv.request_id}`."
        )

    register_command(
        app,
        deps,
        name="/gate",
        action="gate",
        plan=lambda inv: plan(deps, inv),
        work=lambda inv, respond: _work(deps, service, inv, respond),
        ack_text=ack_text,
    )


def _work(deps: Deps, service: GateService, inv: Invocation, respond: Respond) -> None:
    command = plan(deps, inv)
    if isinstance(command, Evaluate):
        evaluate(deps, service, inv)
    elif isinstance(command, Attest):
        _attest(deps, service, inv, command, respond)
    else:
        ephemeral(respond, history_text(service.store.recent(10), deps.now()))
        deps.metrics.commands.labels("/gate", "history").inc()


def evaluate(deps: Deps, service: GateService, inv: Invocation) -> Evaluation:
    """Post the message with every item running, fill it in as probes answer, then the verdict."""
    items = gate_items(deps.runbook)
    people = people_of(deps.directory)
    card = GateCard(items, [], inv.actor.user_id, inv.request_id, service.deadline_s, people=people)
    posted = deps.slack.chat_postMessage(
        channel=inv.channel, blocks=as_dicts(gate_blocks(card)), text="Release go/no-go: evaluating…"
    )
    ts = str(posted["ts"])

    def progress(outcomes: list[ItemOutcome], version: str | None) -> None:
        partial = GateCard(
            items, outcomes, inv.actor.user_id, inv.request_id, service.deadline_s, version, people=people
        )
        _update(deps, inv.channel, ts, partial, "Release go/no-go: evaluating…")

    evaluation = service.evaluate(request_id=inv.request_id, progress=progress)
    note = evaluation.version_problem
    try:
        service.record(evaluation, actor=inv.actor, channel=inv.channel, message_ts=ts)
    except OpsbotError as exc:
        log.error("gate %s not stored: %s", evaluation.id, exc)
        note = "NOT STORED: the bot's store is unavailable, so /cutover cannot use this verdict. " + note
    final = GateCard(
        items,
        evaluation.outcomes,
        inv.actor.user_id,
        inv.request_id,
        service.deadline_s,
        evaluation.version,
        evaluation.verdict,
        evaluation.id,
        evaluation.wall_s,
        note.strip(),
        people,
        evaluation.warnings,
    )
    verdict = "GO" if evaluation.verdict.value == "go" else "NO-GO"
    version = safe(evaluation.version or "unknown", 64)  # the backend's word, like any outside text
    _update(deps, inv.channel, ts, final, f"Release go/no-go: {verdict} for backend {version}")
    deps.metrics.commands.labels("/gate", evaluation.verdict.value).inc()
    return evaluation


def _update(deps: Deps, channel: str, ts: str, card: GateCard, text: str) -> None:
    try:
        deps.slack.chat_update(channel=channel, ts=ts, blocks=as_dicts(gate_blocks(card)), text=text)
    except SlackApiError as exc:  # the stored evaluation stays the truth; a stale message is logged
        log.warning("could not update the gate message %s: %s", ts, exc.response.get("error"))


def _attest(deps: Deps, service: GateService, inv: Invocation, command: Attest, respond: Respond) -> None:
    version, problem = service.deployed_version(inv.request_id, source="gate attest")
    if version is None:
        ephemeral(
            respond,
            f":grey_question: Not recorded: the deployed backend version is unknown "
            f"({safe(problem, 300)}), and an attestation is valid for one version only. Try again when the "
            "backend answers.",
        )
        return
    row = Attestation(
        check_id=command.check_id,
        version=version,
        evidence=command.evidence,
        attested_by=inv.actor.user_id,
        attested_at=deps.now(),
        request_id=inv.request_id,
        channel=inv.channel,
    )
    params = {"check_id": command.check_id, "version": version, "evidence": command.evidence}
    service.store.attest(row, Entry(inv.actor, "gate.attested", "accepted", params, inv.request_id, "", inv.channel))
    item = deps.runbook.item(command.check_id)
    what = safe(item.text if item.attestation is None else f"{item.attestation}; `/gate` still runs its probe", 200)
    respond(
        text=f":memo: <@{inv.actor.user_id}> attested `{command.check_id}` ({what}) for backend "
        f"`{safe(version, 64)}`: {safe(command.evidence, 1000)}\n_Valid for this backend version only._",
        response_type="in_channel",
        replace_original=False,
    )
    deps.metrics.commands.labels("/gate", "attested").inc()
