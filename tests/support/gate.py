"""Shared by the /gate and /cutover tests: a loopback stack with a real Cosmos-protocol server, green CI
for the deployed commit, and helpers that read what an operator reads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rehearsal.sim.cosmos import CosmosServer
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import ADMIN, CHANNEL, OPERATOR, ROLES, text_of, wait_until

SHA = "abc1234" + "0" * 33  # what the backend reports as deployed
SHA2 = "def5678" + "0" * 33  # the next backend deploy
CHECKS = ("pnpm verify", "pnpm lint", "pnpm smoke:release")
CONTAINERS = {
    "dynamic_config": "/id",
    "trading-control": "/id",
    "order": "/tenantId",
    "trade-history": "/accountId",
    "manual-entry": "/tenantId",
}
CONTROL_DOCS = [{"id": "global", "halted": False, "reason": None, "revision": 1}]
# The gate's items that need a person's word: the two manual go conditions, and go 7's web/mobile part.
GATE_ATTESTED = ("go-kill-switch-maintenance", "go-mobile-interventions", "go-no-legacy-data")
FINAL = re.compile(r"^Release go/no-go: (GO|NO-GO) ")
ITEM = re.compile(r"\*(PASS|FAIL|UNKNOWN)\*.*?`([a-z0-9-]+)`")


def seed(
    server: CosmosServer, containers: dict[str, str] | None = None, control: list[dict[str, Any]] | None = None
) -> str:
    database = f"opsbot-{uuid.uuid4().hex[:8]}"
    server.seed(database, containers or CONTAINERS, {"trading-control": CONTROL_DOCS if control is None else control})
    return database


def cosmos_settings(server: CosmosServer, database: str) -> dict[str, Any]:
    return {"COSMOS_ENDPOINT": server.endpoint, "COSMOS_KEY": server.key, "COSMOS_DATABASE": database}


def green(stack: Stack, sha: str = SHA) -> None:
    """The backend reports `sha` as deployed and its three CI checks succeeded."""
    stack.backend.set_version(sha)
    for name in CHECKS:
        stack.github.set_check(sha, name)


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(sqlite_url: str, cosmos_server: CosmosServer) -> Iterator[StackFactory]:
    """Start a stack with Cosmos seeded like the runbook's account; keyword arguments override settings."""
    started: list[Stack] = []

    def make(*, database: str | None = None, **overrides: Any) -> Stack:
        values = {
            **ROLES,
            **cosmos_settings(cosmos_server, database or seed(cosmos_server)),
            "OPSBOT_GATE_DEADLINE_SECONDS": 5,
            **overrides,
        }
        stack = Stack(database_url=sqlite_url, overrides=values).start()
        started.append(stack)
        green(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture
def gate_stack(make_stack: StackFactory) -> Stack:
    return make_stack()


def finals(stack: Stack) -> list[ApiCall]:
    return [c for c in stack.peer.calls_to("chat.update") if FINAL.match(str(c.args.get("text") or ""))]


def run_gate(stack: Stack, *, user: str = OPERATOR, timeout: float = 15.0) -> ApiCall:
    """`/gate` as a signed slash command; the final version of the one gate message."""
    before = len(finals(stack))
    response = stack.sender.command(user=user, command="/gate", text="", channel=CHANNEL)
    assert response.status_code == 200, response.text
    stack.peer.wait_for(lambda _: len(finals(stack)) > before, timeout=timeout)
    return finals(stack)[before]


def verdicts(call: ApiCall) -> dict[str, str]:
    """Item id -> PASS/FAIL/UNKNOWN, as shown in the message."""
    found: dict[str, str] = {}
    for block in call.args.get("blocks") or []:
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if match := ITEM.search(text):
            found[match.group(2)] = match.group(1)
    return found


def item_text(call: ApiCall, item_id: str) -> str:
    for block in call.args.get("blocks") or []:
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if f"`{item_id}`" in text:
            return str(text)
    raise AssertionError(f"{item_id} not in the message")


def command(stack: Stack, name: str, text: str, *, user: str = OPERATOR) -> str:
    """Run a slash command and return its answer: the ack's own text (a refusal, answered at once), or else
    the ephemeral or in-channel answer posted to the response_url afterwards."""
    before = len(stack.peer.calls_to("response_url"))
    response = stack.sender.command(user=user, command=name, text=text, channel=CHANNEL)
    assert response.status_code == 200, response.text
    if response.content:
        said = response.json().get("text")
        if said:
            return str(said)
    answer = stack.peer.wait_for_call("response_url", count=before + 1, timeout=15)[-1]
    return text_of(answer.args)


def attest(
    stack: Stack, check_id: str, evidence: str = "checked on the release candidate", *, user: str = ADMIN
) -> str:
    return command(stack, "/gate", f"attest {check_id} {evidence}", user=user)


def attest_gate_items(stack: Stack) -> None:
    for check_id in GATE_ATTESTED:
        assert "attested" in attest(stack, check_id)


def wait_rows(condition: Callable[[], bool]) -> None:
    wait_until(condition, timeout=10)
