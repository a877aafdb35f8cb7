"""Checks of GitHub REST calls against GitHub's published OpenAPI description, from the pinned
`@octokit/openapi` npm package (package.json): every request's path, method, query and body, and
every answer's status and JSON, for the calls the bot makes and the simulated GitHub answers.

Error answers GitHub does not describe per operation (a 422 for a dispatch, a 403 secondary
limit) are checked against its `basic-error` shape, which every GitHub error body has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "node_modules" / "@octokit" / "openapi"
DESCRIPTION = PACKAGE / "generated" / "api.github.com.json"
HOST = "https://api.github.com"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any


@cache
def description() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DESCRIPTION.read_text(encoding="utf-8"))
    return doc


@cache
def _api() -> OpenAPI:
    return OpenAPI.from_dict(description(), config=Config(spec_validator_cls=None))


def version() -> str:
    return str(json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"])


def recorder(into: list[Exchange]) -> httpx.Client:
    """An httpx client that keeps every request and answer, to hand to the bot's GitHub client."""

    def keep(response: httpx.Response) -> None:
        response.read()
        request = response.request
        raw = request.content
        url = urlsplit(str(request.url))
        into.append(
            Exchange(
                request.method,
                url.path,
                dict(request.url.params),
                json.loads(raw) if raw else None,
                response.status_code,
                response.json() if response.content else None,
            )
        )

    return httpx.Client(event_hooks={"response": [keep]})


def problems(exchange: Exchange) -> list[str]:
    request = MockRequest(
        HOST,
        exchange.method.lower(),
        exchange.path,
        args=exchange.query,
        data=json.dumps(exchange.body) if exchange.body is not None else None,
        content_type="application/json",
    )
    where = f"{exchange.method} {exchange.path} -> {exchange.status}"
    found: list[str] = []
    try:
        _api().validate_request(request)
    except Exception as exc:  # openapi-core raises one of many types; each is a mismatch
        if why := _why(exc):
            found.append(f"{where}: request: {why}")
    if exchange.status >= 400:
        schema = description()["components"]["schemas"]["basic-error"]
        errors = [e.message for e in OAS30Validator(schema).iter_errors(exchange.answer)]
        if not isinstance(exchange.answer, dict) or "message" not in exchange.answer:
            errors.append("error answer has no message")
        return found + [f"{where}: error answer: {e}" for e in errors]
    payload = b"" if exchange.answer is None else json.dumps(exchange.answer).encode()
    try:
        _api().validate_response(
            request, MockResponse(payload, status_code=exchange.status, content_type="application/json")
        )
    except Exception as exc:
        if why := _why(exc):
            found.append(f"{where}: answer: {why}")
    return found


def _why(exc: Exception) -> str:
    """The schema errors behind openapi-core's exception, one a line, as plain text."""
    inner = exc.__cause__ or exc
    errors = [e for e in getattr(inner, "schema_errors", []) if not _null_allowed(e) and not _search_range(e)]
    if getattr(inner, "schema_errors", None) is not None and not errors:
        return ""
    shown = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:10]]
    return "; ".join(shown) if shown else f"{type(exc).__name__}: {str(exc)[:300]}"


def _search_range(error: Any) -> bool:
    # The runs list's `created` takes GitHub's search syntax (">=2026-01-01T00:00:00Z", "a..b"), as its
    # documentation says, though the description types it as a plain date-time.
    value = error.instance
    return (
        error.validator == "format"
        and isinstance(value, str)
        and value[:1] in "<>"
        and error.schema.get("format") == "date-time"
    )


def _null_allowed(error: Any) -> bool:
    # OpenAPI 3.0's `nullable: true` beside an `enum` that lists no null (e.g. a check run's conclusion):
    # the validator applies the enum to null, GitHub sends null, and the description means it may.
    return error.instance is None and bool(error.schema.get("nullable"))
