"""The seeded people of the local workspace and the role settings fed from them.

One of each role the contract names, and two where a two-person approval needs a second holder:
halt authorities, rollback owners and admins (a cutover advance is requested and approved by admins).
The ids match the tests' (tests/support/common.py), so a transcript reads the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals.policy import Role

CHANNEL_ID = "C0INCIDENT"
CHANNEL_NAME = "trading-incidents"


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    title: str
    roles: tuple[Role, ...]


PEOPLE: tuple[Person, ...] = (
    Person("UOPERATOR", "olivia.operator", "Operator on call", (Role.OPERATOR,)),
    Person("UHALTA", "hana.halt", "Halt authority", (Role.HALT_AUTHORITY,)),
    Person("UHALTB", "hugo.halt", "Halt authority", (Role.HALT_AUTHORITY,)),
    Person("UOWNER", "rosa.rollback", "Rollback owner", (Role.ROLLBACK_OWNER,)),
    Person("UOWNER2", "rafael.rollback", "Rollback owner", (Role.ROLLBACK_OWNER,)),
    Person("UADMIN", "ada.admin", "Admin", (Role.ADMIN,)),
    Person("UADMIN2", "arlo.admin", "Admin (second, to approve cutover advances)", (Role.ADMIN,)),
)

_SETTING = {
    Role.OPERATOR: "OPSBOT_OPERATORS",
    Role.HALT_AUTHORITY: "OPSBOT_HALT_AUTHORITIES",
    Role.ROLLBACK_OWNER: "OPSBOT_ROLLBACK_OWNERS",
    Role.ADMIN: "OPSBOT_ADMINS",
}


def person(user_id: str) -> Person | None:
    return next((p for p in PEOPLE if p.user_id == user_id), None)


def role_settings() -> dict[str, str]:
    """OPSBOT_OPERATORS and the other role lists, as comma-separated user ids."""
    return {name: ",".join(p.user_id for p in PEOPLE if role in p.roles) for role, name in _SETTING.items()}


def as_json() -> list[dict[str, object]]:
    return [{"id": p.user_id, "name": p.name, "title": p.title, "roles": [r.value for r in p.roles]} for p in PEOPLE]
