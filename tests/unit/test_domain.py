"""Pure rules, no database: the approval state machine, the policy table, settings, text safety, `/halt`."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.approvals.errors import AlreadyHandled, ApprovalExpired, NotAllowed, SelfApproval
from bot.approvals.machine import ApprovalView, Status, Transition, Verb, after_execution, decide, on_timeout
from bot.approvals.policy import RULES, Directory, check_approver, check_request
from bot.errors import OpsbotError
from bot.settings import Settings
from bot.text import escape, safe
from commands.errors import operator_message
from commands.grammar.halt import ControlRequest, StatusRequest, parse
from commands.grammar.usage import UsageError
from tests.support.common import ADMIN, CHANNEL, HALT_A, HALT_B, OPERATOR, OWNER, ROLES, STRANGER

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=15)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the process environment; these tests say everything they mean explicitly."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)


def settings(**env: Any) -> Settings:
    return Settings(_env_file=None, **env)


def directory(**extra: Any) -> Directory:
    return Directory.from_settings(settings(**ROLES, **extra))


def view(
    status: Status = Status.PENDING, *, action: str = "halt", requester: str = OPERATOR, **kw: Any
) -> ApprovalView:
    return ApprovalView(id="apr_x", action=action, requester=requester, status=status, expires_at=LATER, **kw)


def click(v: ApprovalView, actor: str, verb: Verb = Verb.APPROVE, now: datetime = NOW) -> Transition:
    return decide(v, actor=actor, verb=verb, now=now, directory=directory())


# --- bot.approvals.machine.decide ------------------------------------------------------------------------------

BREAK_GLASS = view(Status.AWAITING_CONFIRMATION, requester=HALT_A, break_glass=True)


@pytest.mark.parametrize(
    ("v", "actor", "verb", "expected"),
    [
        (view(), HALT_A, Verb.APPROVE, (Status.EXECUTING, "approved", True)),
        (view(), HALT_A, Verb.REJECT, (Status.REJECTED, "rejected", False)),
        (view(), OPERATOR, Verb.REJECT, (Status.REJECTED, "withdrawn", False)),
        (view(action="resume"), HALT_B, Verb.APPROVE, (Status.EXECUTING, "approved", True)),
        (view(action="rollback"), OWNER, Verb.APPROVE, (Status.EXECUTING, "approved", True)),
        (BREAK_GLASS, HALT_B, Verb.APPROVE, (Status.CONFIRMED, "confirmed", False)),
        (BREAK_GLASS, HALT_B, Verb.REJECT, (Status.DISPUTED, "disputed", False)),
    ],
)
def test_decide_allowed_transitions(v: ApprovalView, actor: str, verb: Verb, expected: Any) -> None:
    transition = click(v, actor, verb)
    assert transition.from_status is v.status
    assert (transition.to_status, transition.audit_action, transition.executes) == expected


@pytest.mark.parametrize(
    ("v", "actor", "verb", "error", "says"),
    [
        (view(), OPERATOR, Verb.APPROVE, SelfApproval, "second person"),
        (view(requester=HALT_A), HALT_A, Verb.APPROVE, SelfApproval, "second person"),
        (BREAK_GLASS, HALT_A, Verb.APPROVE, SelfApproval, "second person"),  # cannot confirm own break-glass
        (BREAK_GLASS, HALT_A, Verb.REJECT, SelfApproval, "second person"),  # nor withdraw it once it has run
        (view(), STRANGER, Verb.APPROVE, NotAllowed, "a halt authority"),
        (view(requester=HALT_A), OPERATOR, Verb.APPROVE, NotAllowed, "a halt authority"),
        (view(requester=HALT_A), ADMIN, Verb.APPROVE, NotAllowed, "a halt authority"),
        (view(action="rollback"), HALT_A, Verb.APPROVE, NotAllowed, "a rollback owner"),
        (view(action="cutover.advance"), HALT_A, Verb.APPROVE, NotAllowed, "an admin"),
        (view(action="cutover.advance", requester=ADMIN), OPERATOR, Verb.REJECT, NotAllowed, "an admin"),
        (view(action="nuke"), HALT_A, Verb.APPROVE, NotAllowed, "not an action"),
        (BREAK_GLASS, OPERATOR, Verb.APPROVE, NotAllowed, "a halt authority"),
    ],
)
def test_decide_refusals(v: ApprovalView, actor: str, verb: Verb, error: type[OpsbotError], says: str) -> None:
    with pytest.raises(error) as caught:
        click(v, actor, verb)
    assert says in operator_message(caught.value)


@pytest.mark.parametrize("now", [LATER, LATER + timedelta(seconds=1)])
@pytest.mark.parametrize("v", [view(), BREAK_GLASS])
def test_decide_expired(v: ApprovalView, now: datetime) -> None:
    with pytest.raises(ApprovalExpired) as caught:
        click(v, HALT_B, now=now)
    assert caught.value.expired_at == LATER
    assert "2026-11-25 10:15:00 UTC" in operator_message(caught.value)


@pytest.mark.parametrize("status", sorted(set(Status) - {Status.PENDING, Status.AWAITING_CONFIRMATION}))
@pytest.mark.parametrize("verb", list(Verb))
def test_decide_closed_statuses_say_who_and_when(status: Status, verb: Verb) -> None:
    v = view(status, decided_by=HALT_B, decided_at=NOW)
    for actor in (HALT_A, OPERATOR, STRANGER):  # even past expiry and for anyone, the answer is "already handled"
        with pytest.raises(AlreadyHandled) as caught:
            click(v, actor, verb, now=LATER + timedelta(hours=1))
        assert (caught.value.status, caught.value.by, caught.value.at) == (status.value, HALT_B, NOW)
        message = operator_message(caught.value)
        assert f"({status.value}) by <@{HALT_B}> at 2026-11-25 10:00:00 UTC" in message


@pytest.mark.parametrize(
    ("status", "at", "expected"),
    [
        (Status.PENDING, LATER - timedelta(seconds=1), None),
        (Status.PENDING, LATER, (Status.EXPIRED, "expired")),
        (Status.AWAITING_CONFIRMATION, LATER - timedelta(seconds=1), None),
        (Status.AWAITING_CONFIRMATION, LATER, (Status.ESCALATED, "escalated")),
        (Status.EXECUTING, LATER + timedelta(hours=1), None),
        (Status.EXECUTED, LATER + timedelta(hours=1), None),
        (Status.CONFIRMED, LATER + timedelta(hours=1), None),
    ],
)
def test_on_timeout(status: Status, at: datetime, expected: Any) -> None:
    transition = on_timeout(view(status), now=at)
    if expected is None:
        assert transition is None
    else:
        assert transition is not None and transition.from_status is status and not transition.executes
        assert (transition.to_status, transition.audit_action) == expected


@pytest.mark.parametrize(
    ("break_glass", "succeeded", "retryable", "ttl_left", "expected"),
    [
        (False, True, False, True, Status.EXECUTED),
        (True, True, False, True, Status.AWAITING_CONFIRMATION),
        (False, False, True, True, Status.PENDING),
        (False, False, True, False, Status.FAILED),
        (False, False, False, True, Status.FAILED),
        (True, False, True, True, Status.FAILED),
    ],
)
def test_after_execution(break_glass: bool, succeeded: bool, retryable: bool, ttl_left: bool, expected: Status) -> None:
    assert (
        after_execution(break_glass=break_glass, succeeded=succeeded, retryable=retryable, ttl_left=ttl_left)
        is expected
    )


# --- bot.approvals.policy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(RULES))
def test_empty_settings_allow_nobody_anything(action: str) -> None:
    empty = Directory.from_settings(settings())
    for user in (OPERATOR, HALT_A, ADMIN, STRANGER, ""):
        with pytest.raises(NotAllowed):
            check_request(empty, user_id=user, action=action, channel=CHANNEL)
        with pytest.raises(NotAllowed):
            check_approver(empty, user_id=user, action=action)


def test_unknown_action_is_refused_even_for_admins() -> None:
    with pytest.raises(NotAllowed, match="'nuke' is not an action"):
        check_request(directory(), user_id=ADMIN, action="nuke", channel=CHANNEL)


def test_incident_channel_restriction() -> None:
    d = directory(OPSBOT_INCIDENT_CHANNEL=CHANNEL)
    assert check_request(d, user_id=OPERATOR, action="halt", channel=CHANNEL).approve_role == "halt_authority"
    with pytest.raises(NotAllowed, match=f"only accepted in <#{CHANNEL}>"):
        check_request(d, user_id=HALT_A, action="halt.status", channel="C0RANDOM")


def test_break_glass_needs_halt_authority_and_resume_has_none() -> None:
    d = directory()
    assert check_request(d, user_id=HALT_A, action="halt", channel=CHANNEL, break_glass=True).break_glass_role
    with pytest.raises(NotAllowed, match="break-glass needs a halt authority"):
        check_request(d, user_id=OPERATOR, action="halt", channel=CHANNEL, break_glass=True)
    for action in ("resume", "rollback", "cutover.advance"):
        with pytest.raises(NotAllowed, match="has no break-glass"):
            check_request(
                d,
                user_id=ADMIN if action == "cutover.advance" else HALT_A,
                action=action,
                channel=CHANNEL,
                break_glass=True,
            )


@pytest.mark.parametrize("user", [HALT_A, OWNER, ADMIN])
def test_elevated_roles_imply_operator(user: str) -> None:
    d = Directory.from_settings(
        settings(OPSBOT_HALT_AUTHORITIES=HALT_A, OPSBOT_ROLLBACK_OWNERS=OWNER, OPSBOT_ADMINS=ADMIN)
    )  # no operators listed at all
    for action in ("halt", "halt.status", "rollback", "gate"):
        check_request(d, user_id=user, action=action, channel=CHANNEL)
    with pytest.raises(NotAllowed, match="an operator"):
        check_request(d, user_id=STRANGER, action="halt.status", channel=CHANNEL)


def test_operator_is_not_elevated() -> None:
    d = directory()
    with pytest.raises(NotAllowed, match="an admin"):
        check_request(d, user_id=OPERATOR, action="gate.attest", channel=CHANNEL)
    with pytest.raises(NotAllowed, match="nobody"):
        check_approver(d, user_id=ADMIN, action="halt.status")


# --- bot.settings --------------------------------------------------------------------------------------

GOOD_PRODUCTION = {
    "OPSBOT_ENV": "production",
    "SLACK_BOT_TOKEN": "xoxb-123-456-abc",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "OPSBOT_DATABASE_URL": "postgresql://opsbot:pw@db:5432/opsbot",
    "OPSBOT_OPERATORS": "UOP",
    "OPSBOT_HALT_AUTHORITIES": "UHA",
    "OPSBOT_ROLLBACK_OWNERS": "URO",
    "OPSBOT_ADMINS": "UAD",
    "TRADING_API_URL": "https://trading.example.com",
    "OPSBOT_AUDIT_SIGNING_KEY": base64.b64encode(bytes(range(32))).decode(),
}


def test_production_accepts_a_good_config_with_postgres() -> None:
    s = settings(**GOOD_PRODUCTION)
    assert s.is_production and not s.is_sqlite and s.has_slack_credentials


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "   "}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "changeme"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": " CHANGEME "}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "your-signing-secret"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xapp-1-abc"}, "SLACK_BOT_TOKEN"),
        ({"JWT_SECRET": "hunter2hunter2"}, "JWT_SECRET"),
        ({"OPSBOT_DATABASE_URL": "sqlite:///./opsbot.db"}, "SQLite"),
        ({"SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea254"}, "32 hexadecimal"),
        ({"SLACK_SIGNING_SECRET": "8F14E45FCEEA167A5A36DEDD4BEA2543"}, "32 hexadecimal"),
        ({"SLACK_SIGNING_SECRET": "not-a-slack-secret-at-all-000000"}, "32 hexadecimal"),
        ({"OPSBOT_OPERATORS": ""}, "OPSBOT_OPERATORS is empty"),
        ({"OPSBOT_HALT_AUTHORITIES": " , "}, "OPSBOT_HALT_AUTHORITIES is empty"),
        ({"OPSBOT_ROLLBACK_OWNERS": ""}, "OPSBOT_ROLLBACK_OWNERS is empty"),
        ({"OPSBOT_ADMINS": ""}, "OPSBOT_ADMINS is empty"),
        ({"TRADING_API_URL": "http://trading.example.com"}, "TRADING_API_URL must be an https"),
        ({"OPSBOT_AUDIT_SIGNING_KEY": ""}, "OPSBOT_AUDIT_SIGNING_KEY is not set"),
        ({"OPSBOT_AUDIT_SIGNING_KEY": "c2hvcnQ="}, "OPSBOT_AUDIT_SIGNING_KEY is not an Ed25519 private key"),
    ],
)
def test_production_refuses_weak_config(override: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        settings(**{**GOOD_PRODUCTION, **override})
    # The same values are accepted outside production (a developer's laptop).
    assert not settings(**{**GOOD_PRODUCTION, **override, "OPSBOT_ENV": "development"}).is_production


def test_comma_lists_and_blank_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        OPSBOT_OPERATORS=" U1, U2,,U3 ,",
        OPSBOT_ADMINS="",
        OPSBOT_INCIDENT_CHANNEL="  ",
        SLACK_SIGNING_SECRET="",
        JWT_SECRET=" ",
    )
    assert s.operators == {"U1", "U2", "U3"} and s.admins == frozenset()
    assert s.incident_channel is None and s.slack_signing_secret is None and s.jwt_secret is None
    monkeypatch.setenv("OPSBOT_HALT_AUTHORITIES", "UA,UB")  # from the environment, not JSON-decoded
    monkeypatch.setenv("OPSBOT_ANNOUNCE_CHANNEL", "")
    from_env = settings()
    assert from_env.halt_authorities == {"UA", "UB"} and from_env.announce_channel is None


# --- bot.text ------------------------------------------------------------------------------------------

HALF_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def test_escape_neutralises_mentions_and_links() -> None:
    assert escape("<!channel> <@U1> <https://x|y> a&b") == "&lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt; a&amp;b"
    assert "<" not in safe("hey <!here> <!everyone>", 100)


def test_safe_bounds_long_text_and_marks_the_cut() -> None:
    out = safe("x" * 5000, 3000)
    assert len(out) == 3000 and out.endswith("…")
    assert safe("\x00bell\x07", 50) == " bell "


@pytest.mark.parametrize("raw", ["<" * 5000, "a&<>" * 1250, "ab<!channel>" * 400, "&amp;" * 1000])
def test_safe_never_exceeds_the_limit_or_shows_half_an_entity(raw: str) -> None:
    for limit in [*range(1, 40), 3000]:
        out = safe(raw, limit)
        assert len(out) <= limit, (limit, out)
        assert not HALF_ENTITY.search(out.removesuffix("…")), (limit, out)
        assert "<" not in out and ">" not in out


# --- commands.grammar.halt.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", StatusRequest()),
        ("  STATUS ", StatusRequest()),
        ("global fat finger", ControlRequest("halt", "global", "fat finger")),
        ("global reason --now", ControlRequest("halt", "global", "reason", break_glass=True)),
        ("tenant:acme r", ControlRequest("halt", "tenant:acme", "r")),
        ("strategy:mm-1 r", ControlRequest("halt", "strategy:mm-1", "r")),
        ("symbol:aapl r", ControlRequest("halt", "symbol:AAPL", "r")),
        ("resume global all clear", ControlRequest("resume", "global", "all clear")),
        ("global " + "r" * 500, ControlRequest("halt", "global", "r" * 500)),
    ],
)
def test_halt_grammar_accepts(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "how `/halt` works"),
        ("help", "how `/halt` works"),
        ("status x", "takes nothing"),
        ("galaxy x", "not a scope"),
        ("tenant: r", "not a scope"),
        ("global", "reason is required"),
        ("global --now", "reason is required"),
        ("--now global reason", "goes at the very end"),  # `--now` counts only as the last word
        ("symbol:ACME spread --now blew out", "goes at the very end"),
        ("global r --now --now", "goes at the very end"),
        ("resume", "needs a scope"),
        ("resume global", "reason is required"),
        ("resume global r --now", "not available for resume"),
        ("--bogus", "not a scope"),
        ("global r --bogus", "Unknown option"),
        ("global " + "r" * 501, "501 characters"),
        ("global " + "word " * 1000, "at most 500"),
        ("x" * 5000, "not a scope"),
    ],
)
def test_halt_grammar_refuses_with_usage(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert problem in caught.value.problem
    assert "/halt status" in caught.value.usage
    assert len(caught.value.problem) < 200  # a 5000-character paste is never echoed back whole
