"""How the simulated GitHub refuses a `workflow_dispatch`, with GitHub's statuses and messages.

404 for a workflow file the repository does not have; 422 for a body without `ref`, inputs that
are not strings, more than 25 inputs, a ref that does not exist, an input the workflow does not
declare, or a required input left out.
"""

from __future__ import annotations

import json
from typing import Any

Answer = tuple[int, Any, dict[str, str]]  # status, JSON body (None: empty 204), extra headers
DOCS = "https://docs.github.com/rest"
MESSAGES = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found", 422: "Validation Failed"}
MAX_DISPATCH_INPUTS = 25


def error_doc(status: int, message: str | None = None) -> dict[str, str]:
    return {"message": message or MESSAGES.get(status, "Server Error"), "documentation_url": DOCS}


def _error(status: int, message: str | None = None) -> Answer:
    return status, error_doc(status, message), {}


def refuse_dispatch(declared: dict[str, bool] | None, refs: set[str], body: Any) -> Answer | None:
    """GitHub's refusals of a dispatch, in its order: the workflow, the body, the ref, the inputs."""
    if declared is None:
        return _error(404)
    if not isinstance(body, dict) or not isinstance(body.get("ref"), str):
        return _error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        return _error(422, "Invalid request.\n\nFor 'properties/inputs', values must be strings.")
    if len(inputs) > MAX_DISPATCH_INPUTS:
        return _error(
            422,
            f"Invalid request.\n\nFor 'properties/inputs', {len(inputs)} is greater than "
            f"the maximum of {MAX_DISPATCH_INPUTS} properties.",
        )
    if body["ref"] not in refs:
        return _error(422, f"No ref found for: {body['ref']}")
    unexpected = sorted(set(inputs) - set(declared))
    if unexpected:
        return _error(422, "Unexpected inputs provided: " + json.dumps(unexpected))
    missing = [name for name, required in declared.items() if required and not inputs.get(name)]
    if missing:
        return _error(422, f"Required input '{missing[0]}' not provided")
    return None
