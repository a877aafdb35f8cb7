"""Loading bot/runbook/runbook.yaml once, at start: structure is checked by the models (bot.runbook.model);
what a schema cannot say (probe names the code knows, ids unique across every section, references
between sections) is checked here. Every problem is reported at once, naming the file and the
offending id or field, so a bad edit stops the bot at start instead of surfacing mid-incident."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not installed here
from pydantic import ValidationError

from bot.runbook.model import (
    BOT_MEASURES,
    COMPOSITE_PROBES,
    KNOWN_PROBES,
    REQUIRED_PARAMS,
    TRIGGER_IDS,
    CheckItem,
    Runbook,
    RunbookError,
    Signal,
)


def load_runbook(path: Path | None = None) -> Runbook:
    """Load and validate the runbook; `path` None means the file shipped inside the package."""
    name, text = _read(path)
    data = _parse(name, text)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        raise _invalid(name, [_describe(err, data) for err in exc.errors()]) from None
    problems = _problems(runbook)
    if problems:
        raise _invalid(name, problems)
    return runbook


def _read(path: Path | None) -> tuple[str, str]:
    try:
        if path is None:
            shipped = resources.files("bot.runbook").joinpath("runbook.yaml")
            return "bot/runbook/runbook.yaml", shipped.read_text(encoding="utf-8")
        return str(path), path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"{path or 'bot/runbook/runbook.yaml'}: cannot read the runbook: {exc}") from None


def _parse(name: str, text: str) -> Any:
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader), set())
        if duplicate is not None:
            raise RunbookError(f"{name}: not valid YAML: {duplicate}")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunbookError(f"{name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RunbookError(f"{name}: invalid runbook: the top level must be a mapping with `version: 1`")
    return data


def _duplicate_key(node: Any, seen: set[int]) -> str | None:
    """PyYAML keeps the last of two equal keys; in a runbook that hides an edit, so it is an error."""
    if node is None or id(node) in seen:
        return None
    seen.add(id(node))
    children: list[Any] = []
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    return f"duplicate key '{key.value}' at line {key.start_mark.line + 1}"
                keys.add(key.value)
            children.append(value)
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    return next((found for child in children if (found := _duplicate_key(child, seen))), None)


def _invalid(name: str, problems: list[str]) -> RunbookError:
    return RunbookError(f"{name}: invalid runbook:\n" + "\n".join(f"  - {p}" for p in problems))


def _describe(error: Any, data: Any) -> str:
    """`go[3].probe (id 'go-platform-auth'): Extra inputs…`: the path plus the nearest item id."""
    where, node, near = "", data, None
    for part in error["loc"]:
        where += f"[{part}]" if isinstance(part, int) else f"{'.' if where else ''}{part}"
        node = _child(node, part)
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            near = node["id"]
    label = f"{where} (id '{near}')" if near else where or "top level"
    return f"{label}: {error['msg']}"


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _problems(runbook: Runbook) -> list[str]:
    problems = [p for section, item in runbook.labelled_items() for p in _item_problems(section, item)]
    return problems + _duplicate_ids(runbook) + _reference_problems(runbook)


def _item_problems(section: str, item: CheckItem) -> list[str]:
    where = f"{section} item '{item.id}'"
    if item.kind == "attested":
        if item.attestation is not None:
            return [f"{where}: attested items are attested as a whole; `attestation` is for automatic items"]
        return (
            [f"{where}: attested items take no probe or params (found probe {item.probe!r})"]
            if item.probe is not None or item.params
            else []
        )
    if item.attestation is not None and item.probe in COMPOSITE_PROBES:
        return [f"{where}: composite probe '{item.probe}' takes no attestation (it judges other items)"]
    if item.probe is None:
        return [f"{where}: automatic items need a probe (one of {', '.join(sorted(KNOWN_PROBES))})"]
    if item.probe not in KNOWN_PROBES:
        return [f"{where}: unknown probe '{item.probe}' (known: {', '.join(sorted(KNOWN_PROBES))})"]
    param = REQUIRED_PARAMS.get(item.probe)
    value = item.params.get(param) if param else None
    if param and not (isinstance(value, str) and value.strip()):
        return [f"{where}: probe '{item.probe}' needs params.{param} (e.g. \"pnpm verify\")"]
    return []


def _duplicate_ids(runbook: Runbook) -> list[str]:
    # One namespace for all ids: audit rows and `/gate attest <id>` name an id without its section.
    where: dict[str, str] = {}
    problems: list[str] = []
    named = [("stages", s.id) for s in runbook.stages]
    named += [(section, item.id) for section, item in runbook.labelled_items()]
    named += [("rollback.triggers", t.id) for t in runbook.rollback.triggers]
    named += [("rollback.actions", a.id) for a in runbook.rollback.actions]
    named += [("monitoring", s.id) for s in runbook.signals()]
    for section, item_id in named:
        if item_id in where:
            problems.append(f"duplicate id '{item_id}' in {where[item_id]} and {section}")
        where.setdefault(item_id, section)
    return problems


def _reference_problems(runbook: Runbook) -> list[str]:
    problems: list[str] = []
    order = [stage.id for stage in runbook.stages]
    for index, stage in enumerate(runbook.stages):
        since = stage.entry.backend_deploy_since
        if since is not None and since not in order[:index]:
            problems.append(
                f"stage '{stage.id}': entry.backend_deploy_since names '{since}', "
                f"which is not an earlier stage (earlier: {', '.join(order[:index]) or 'none'})"
            )
    triggers = [t.id for t in runbook.rollback.triggers]
    if sorted(triggers) != sorted(TRIGGER_IDS):
        problems.append(
            f"rollback.triggers: ids must be exactly {', '.join(TRIGGER_IDS)} "
            f"(the /rollback --trigger values), found {', '.join(triggers)}"
        )
    for signal in runbook.signals():
        if signal.trigger is not None and signal.trigger not in triggers:
            problems.append(f"monitoring signal '{signal.id}': unknown trigger '{signal.trigger}'")
        problems += _signal_problems(signal)
    return problems


def _signal_problems(signal: Signal) -> list[str]:
    """A signal reads from exactly one place: a PromQL query, or a measure the bot knows."""
    where = f"monitoring signal '{signal.id}'"
    if signal.source == "prometheus":
        if signal.measure is not None:
            return [f"{where}: source prometheus takes a query, not a measure"]
        if not (signal.query or "").strip():
            return [f"{where}: source prometheus needs a query (PromQL)"]
        return []
    if signal.query is not None:
        return [f"{where}: source bot takes a measure, not a query"]
    if signal.measure not in BOT_MEASURES:
        return [
            f"{where}: source bot needs a measure, one of {', '.join(sorted(BOT_MEASURES))} (found {signal.measure!r})"
        ]
    return []
