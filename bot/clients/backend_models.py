"""The trading backend's answers as pydantic models; TradingControl is what the bot reads of the control
document. A wrong type or a missing required field raises pydantic's ValidationError (a ValueError)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from bot.clients.answers import Answer

ScopeName = Annotated[StrictStr, Field(min_length=1)]
# Surfaces are shown and compared as text; a build number the backend sends as a number is one too.
SurfaceVersion = Annotated[str, BeforeValidator(str)]


class GlobalControl(Answer):
    halted: StrictBool
    reason: StrictStr | None = None
    updated_at: StrictStr | None = None
    updated_by: StrictStr | None = None


class ScopeControl(Answer):
    scope: ScopeName
    disabled: StrictBool
    reason: StrictStr | None = None
    updated_at: StrictStr | None = None


class Maintenance(Answer):
    enabled: StrictBool
    message: StrictStr | None = None


class ControlAnswer(Answer):
    """`GET /api/trading-control`, and the answer of a halt or resume: the document after the change."""

    model_config = ConfigDict(title="trading-control")

    global_: GlobalControl = Field(alias="global")
    scopes: tuple[ScopeControl, ...] = ()
    maintenance: Maintenance = Maintenance(enabled=False)
    revision: StrictInt

    def missing(self) -> tuple[str, ...]:
        """The documented keys the answer left out, e.g. `global.reason` (a left-out block is named once)."""
        parts: list[tuple[str, BaseModel]] = [("", self), ("global", self.global_)]
        if "maintenance" in self.model_fields_set:
            parts.append(("maintenance", self.maintenance))
        parts += [("scopes[]", scope) for scope in self.scopes]
        return tuple(dict.fromkeys(key for prefix, part in parts for key in _left_out(prefix, part)))


def _left_out(prefix: str, part: BaseModel) -> list[str]:
    keys = [info.alias or name for name, info in type(part).model_fields.items() if name not in part.model_fields_set]
    return [f"{prefix}.{key}" if prefix else key for key in keys]


@dataclass(frozen=True)
class TradingControl:
    global_: GlobalControl
    scopes: tuple[ScopeControl, ...]
    maintenance_enabled: bool
    maintenance_message: str | None
    revision: int
    # Contract keys the answer left out: tolerated for reading state, a FAIL for the gate's contract probe.
    missing: tuple[str, ...] = ()

    def is_halted(self, scope: str) -> bool:
        if scope == "global":
            return self.global_.halted
        return any(s.disabled for s in self.scopes if s.scope == scope)

    @classmethod
    def from_json(cls, doc: Any) -> TradingControl:
        """The control document read; ValidationError when its shape is not the documented one."""
        answer = ControlAnswer.model_validate(doc)
        return cls(
            answer.global_,
            answer.scopes,
            answer.maintenance.enabled,
            answer.maintenance.message,
            answer.revision,
            answer.missing(),
        )


class Health(Answer):
    """`GET /api/health`."""

    model_config = ConfigDict(title="health")

    status: StrictStr
    version: StrictStr
    surfaces: dict[str, SurfaceVersion] = Field(default_factory=dict)


class FlagsAnswer(Answer):
    """`GET /api/feature-flags`; each flag's own shape is the gate's contract check, not a reason to refuse."""

    model_config = ConfigDict(title="feature-flags")

    flags: dict[str, Any]


class ConfigAnswer(Answer):
    """`GET /api/dynamic-config`."""

    model_config = ConfigDict(title="dynamic-config")

    values: dict[str, Any]


class ErrorAnswer(Answer):
    """A refusal or failure: `{"error": str}` with a 4xx or 5xx."""

    error: Annotated[StrictStr, Field(min_length=1)]


def document(model: type[Answer]) -> Callable[[Any], dict[str, Any]]:
    """A reader that checks the answer against `model` and gives the document as answered."""

    def read(doc: Any) -> dict[str, Any]:
        model.model_validate(doc)
        return dict(doc)

    return read
