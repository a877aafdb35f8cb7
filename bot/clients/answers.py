"""The base of the models that read other services' JSON answers, and how a refused answer is described.

The models name their fields with pydantic's strict types: a string where a boolean belongs is refused,
never coerced. Fields the bot does not read are ignored, as the services send more than it needs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_SHOWN = 3  # an operator reads the first few problems; the rest are counted


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def refusal(exc: ValidationError) -> str:
    """What was wrong, e.g. `trading-control: global.halted: Input should be a valid boolean`.

    Names fields and the rule they broke, never the values: an answer may carry what must not be shown."""
    problems = [_problem(error["loc"], error["type"], error["msg"]) for error in exc.errors()[:MAX_SHOWN]]
    more = exc.error_count() - MAX_SHOWN
    return f"{exc.title}: " + "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _problem(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    if kind == "model_type":  # pydantic's text names our class, which means nothing to an operator
        message = "Input should be an object"
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{where}: {message}" if where else message
