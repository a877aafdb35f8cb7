"""Checks of Web API calls against Slack's published OpenAPI description (vendored beside this file).

The description is Swagger 2.0 from slackapi/slack-api-specs; it predates some methods and errors:
- the files.*UploadExternal methods are not in it: their calls are checked against UPLOAD_METHODS,
  written from Slack's method pages;
- error enums list only the errors known in 2021 (not invalid_blocks, missing_scope, …): an error
  answer is checked for Slack's error shape, and its name against the enum plus LATER_ERRORS;
- two known errata, kept as narrow as possible: a message object's `app_id` (Slack sends it with
  every app's message, the 2021 schema forbids it) and chat.update's `message.blocks` (an array in
  every real answer, an object in the schema).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC = Path(__file__).with_name("slack_web_api") / "slack_web_openapi_v2_without_examples.json"
UPLOAD_METHODS = {
    "files.getUploadURLExternal": ({"filename", "length"}, {"alt_txt", "snippet_type"}),
    "files.completeUploadExternal": ({"files"}, {"channel_id", "channels", "thread_ts", "initial_comment"}),
}
# Errors Slack documents today for the methods the bot calls, newer than the published description.
LATER_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "missing_scope",
        "not_allowed_token_type",
        "unknown_method",
        "no_text",
        "message_not_found",
        "hash_conflict",
        "invalid_arguments",
        "method_not_supported_for_channel_type",
        "is_archived",
        "file_not_found",
        "user_not_found",
        "ratelimited",
        "not_in_channel",
        "channel_not_found",
    }
)
# Sent with any method: the token, and `team_id`, which slack_sdk's WebClient adds to every call once it
# knows the workspace (Bolt's per-request client does); Slack takes both everywhere.
CLIENT_ARGS = frozenset({"token", "team_id"})
ERROR_FIELDS = frozenset({"ok", "error", "needed", "provided", "errors", "response_metadata", "warning"})


@cache
def spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return doc


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resource("urn:slack-web-api", Resource.from_contents(spec(), default_specification=DRAFT4))


def operation(method: str) -> dict[str, Any] | None:
    path = spec()["paths"].get(f"/{method}")
    if path is None:
        return None
    op: dict[str, Any] = next(iter(path.values()))
    return op


def request_problems(method: str, args: dict[str, Any]) -> list[str]:
    """What in a call's arguments the published method does not take, or lacks."""
    sent = set(args) - CLIENT_ARGS
    if method in UPLOAD_METHODS:
        required, optional = UPLOAD_METHODS[method]
        return [f"{method}: unknown argument {a}" for a in sorted(sent - required - optional)] + [
            f"{method}: missing {a}" for a in sorted(required - sent)
        ]
    op = operation(method)
    if op is None:
        return [f"{method}: no such method in the published Web API"]
    params = {p["name"]: p for p in op["parameters"] if p["in"] != "header" and p["name"] != "token"}
    problems = [f"{method}: unknown argument {a}" for a in sorted(sent - set(params))]
    problems += [f"{method}: missing {n}" for n, p in params.items() if p.get("required") and n not in sent]
    return problems


def answer_problems(method: str, answer: dict[str, Any]) -> list[str]:
    """What in an answer does not match the published success schema, or Slack's error shape."""
    if answer.get("ok") is False:
        problems = [f"{method}: error answer field {k}" for k in sorted(set(answer) - ERROR_FIELDS)]
        if not isinstance(answer.get("error"), str):
            return [*problems, f"{method}: error answer without an error name"]
        op = operation(method)
        known = (
            set(
                op["responses"]
                .get("default", {})
                .get("schema", {})
                .get("properties", {})
                .get("error", {})
                .get("enum", [])
            )
            if op
            else set()
        )
        if answer["error"] not in known | LATER_ERRORS:
            problems.append(f"{method}: error {answer['error']!r} is not one Slack documents")
        return problems
    op = operation(method)
    if op is None:
        return [] if method in UPLOAD_METHODS or method == "apps.connections.open" else [f"{method}: unknown"]
    schema = {
        "$ref": "urn:slack-web-api#/paths/" + f"~1{method}/{next(iter(spec()['paths'][f'/{method}']))}"
        "/responses/200/schema"
    }
    validator = Draft4Validator(schema, registry=_registry())
    return [
        f"{method}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(answer)
        if not _erratum(method, e)
    ]


def _erratum(method: str, error: Any) -> bool:
    where = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = set(error.instance) - set(error.schema.get("properties", {}))
        return where[-1:] == ("message",) and extra == {"app_id"}
    return method == "chat.update" and where == ("message", "blocks") and error.validator == "type"
