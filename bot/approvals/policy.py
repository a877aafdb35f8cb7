"""Who may do what: the approval rules as a rule table, kept apart from command code.

Deny by default: an action missing from the table, or a user in no role list, is refused.
Everyone named in an elevated role list (halt authorities, rollback owners, admins) may also run
commands, so an incident never stalls on a person listed for approvals but not as an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.approvals.errors import NotAllowed
from bot.settings import Settings


class Role(StrEnum):
    OPERATOR = "operator"
    HALT_AUTHORITY = "halt_authority"
    ROLLBACK_OWNER = "rollback_owner"
    ADMIN = "admin"


ROLE_NAMES = {
    Role.OPERATOR: "an operator",
    Role.HALT_AUTHORITY: "a halt authority",
    Role.ROLLBACK_OWNER: "a rollback owner",
    Role.ADMIN: "an admin",
}


@dataclass(frozen=True)
class Rule:
    request_role: Role
    approve_role: Role | None = None  # None: runs without approval (read-only commands)
    approvals: int = 0
    break_glass_role: Role | None = None


RULES: dict[str, Rule] = {
    "halt.status": Rule(request_role=Role.OPERATOR),
    "halt": Rule(Role.OPERATOR, approve_role=Role.HALT_AUTHORITY, approvals=1, break_glass_role=Role.HALT_AUTHORITY),
    "resume": Rule(Role.OPERATOR, approve_role=Role.HALT_AUTHORITY, approvals=1),
    "rollback": Rule(Role.OPERATOR, approve_role=Role.ROLLBACK_OWNER, approvals=1),
    "rollback.status": Rule(request_role=Role.OPERATOR),
    "gate": Rule(request_role=Role.OPERATOR),
    "gate.history": Rule(request_role=Role.OPERATOR),
    "gate.attest": Rule(request_role=Role.ADMIN),
    "cutover.status": Rule(request_role=Role.OPERATOR),
    "cutover.advance": Rule(Role.ADMIN, approve_role=Role.ADMIN, approvals=1),
}


@dataclass(frozen=True)
class Directory:
    """Role membership, read from settings once."""

    members: dict[Role, frozenset[str]]
    incident_channel: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Directory:
        elevated = settings.halt_authorities | settings.rollback_owners | settings.admins
        return cls(
            members={
                Role.OPERATOR: settings.operators | elevated,
                Role.HALT_AUTHORITY: settings.halt_authorities,
                Role.ROLLBACK_OWNER: settings.rollback_owners,
                Role.ADMIN: settings.admins,
            },
            incident_channel=settings.incident_channel,
        )

    def has(self, user_id: str, role: Role) -> bool:
        return user_id in self.members.get(role, frozenset())

    def holders(self, role: Role) -> frozenset[str]:
        return self.members.get(role, frozenset())


def rule_for(action: str) -> Rule:
    rule = RULES.get(action)
    if rule is None:
        raise NotAllowed(f"'{action}' is not an action this bot allows")
    return rule


def check_request(directory: Directory, *, user_id: str, action: str, channel: str, break_glass: bool = False) -> Rule:
    """Raise NotAllowed unless `user_id` may request `action` in `channel`."""
    rule = rule_for(action)
    if directory.incident_channel and channel != directory.incident_channel:
        raise NotAllowed(f"commands are only accepted in <#{directory.incident_channel}>")
    if not directory.has(user_id, rule.request_role):
        raise NotAllowed(f"this needs {ROLE_NAMES[rule.request_role]}")
    if break_glass:
        if rule.break_glass_role is None:
            raise NotAllowed(f"'{action}' has no break-glass; it always needs a second person")
        if not directory.has(user_id, rule.break_glass_role):
            raise NotAllowed(f"break-glass needs {ROLE_NAMES[rule.break_glass_role]}")
    return rule


def check_approver(directory: Directory, *, user_id: str, action: str) -> None:
    rule = rule_for(action)
    if rule.approve_role is None or not directory.has(user_id, rule.approve_role):
        needed = ROLE_NAMES[rule.approve_role] if rule.approve_role else "nobody"
        raise NotAllowed(f"approving this needs {needed}")


def people_of(directory: Directory) -> frozenset[str]:
    """Everyone in a role: the only users the bot's own reasons mention."""
    return frozenset().union(*directory.members.values())
