"""A mistyped subcommand, scope, check id, option or trigger is answered with "did you mean …", through
signed slash commands, with the usage and nothing run."""

from __future__ import annotations

import pytest

from rehearsal.sim.stack import Stack
from tests.support.common import ADMIN, CHANNEL, OPERATOR


def answer(stack: Stack, command: str, text: str, user: str = OPERATOR) -> str:
    response = stack.sender.command(user=user, command=command, text=text, channel=CHANNEL)
    assert response.status_code == 200
    body = response.json()
    assert body.get("response_type") == "ephemeral"
    return str(body["text"])


@pytest.mark.parametrize(
    ("command", "text", "hint"),
    [
        ("/halt", "tenant acme fat-finger orders", "Did you mean `tenant:acme`?"),
        ("/halt", "tennant:acme fat-finger orders", "Did you mean `tenant:acme`?"),
        ("/halt", "globl runaway algo", "Did you mean `global`?"),
        ("/halt", "stauts", "Did you mean `status`?"),
        ("/gate", "attset go-no-legacy-data checked", "Did you mean `attest`?"),
        ("/gate", "histroy", "Did you mean `history`?"),
        ("/cutover", "advnce ready", "Did you mean `advance`?"),
        ("/rollback", "logins fail --trigger auht", "Did you mean `auth`?"),
        ("/rollback", "logins fail --trigge auth", "Did you mean `--trigger`?"),
    ],
)
def test_a_typo_gets_did_you_mean_and_nothing_runs(stack: Stack, command: str, text: str, hint: str) -> None:
    user = ADMIN if command == "/cutover" else OPERATOR
    said = answer(stack, command, text, user)
    assert hint in said and "Usage" in said, said
    assert stack.peer.calls_to("chat.postMessage") == []
    assert stack.backend.calls("POST", "/api/trading-control/halt") == []


def test_a_mistyped_check_id_names_the_closest_attestable_one(stack: Stack) -> None:
    said = answer(stack, "/gate", "attest go-no-legacy-dta checked the flows", ADMIN)
    assert "`go-no-legacy-dta` is not a check of the runbook. Did you mean `go-no-legacy-data`?" in said


def test_a_word_far_from_everything_gets_no_guess(stack: Stack) -> None:
    said = answer(stack, "/halt", "galaxy far away")
    assert "is not a scope" in said and "Did you mean" not in said
