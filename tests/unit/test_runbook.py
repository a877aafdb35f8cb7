"""bot/runbook/runbook.yaml is the runbook, faithfully, and a bad edit to it stops the bot with a clear message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.runbook.load import load_runbook
from bot.runbook.model import KNOWN_PROBES, TRIGGER_IDS, Runbook, RunbookError

SHIPPED: dict[str, Any] = yaml.safe_load(resources.files("bot.runbook").joinpath("runbook.yaml").read_text("utf-8"))


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return load_runbook()


def test_shipped_runbook_has_the_five_stages_in_runbook_order(runbook: Runbook) -> None:
    assert [s.name for s in runbook.stages] == [
        "Backend internal validation",
        "Web internal adoption",
        "Mobile internal beta",
        "Controlled operator rollout",
        "Broader production cutover",
    ]
    assert all(stage.checks for stage in runbook.stages)
    assert runbook.stage_index("mobile-internal-beta") == 2
    broad = runbook.stage("broader-production-cutover")
    assert broad.entry.backend_deploy_since == "mobile-internal-beta" and broad.entry.manual_smoke
    assert [s.entry.backend_deploy_since for s in runbook.stages[:4]] == [None] * 4
    # Soaks an operator accepts: an hour at least before the beta, the operators and broader production.
    assert [s.entry.soak.total_seconds() for s in runbook.stages[1:]] == [900, 3600, 3600, 7200]


def test_shipped_runbook_counts(runbook: Runbook) -> None:
    assert runbook.version == 1
    assert len(runbook.go) == 10 and len(runbook.no_go) == 3
    assert len(runbook.smoke.automated) == 6 and len(runbook.smoke.manual) == 5
    assert [t.id for t in runbook.rollback.triggers] == list(TRIGGER_IDS)
    assert len(runbook.rollback.actions) == 5
    assert len(runbook.monitoring.immediate) == 8 and len(runbook.monitoring.first_24h) == 5


def test_go_conditions_map_to_the_agreed_probes(runbook: Runbook) -> None:
    probes = [(item.kind, item.probe, item.params.get("check")) for item in runbook.go]
    assert probes == [
        ("automatic", "github-check", "pnpm verify"),
        ("automatic", "github-check", "pnpm lint"),
        ("automatic", "github-check", "pnpm smoke:release"),
        ("automatic", "platform-auth", None),
        ("automatic", "cosmos-control-plane", None),
        ("automatic", "cosmos-execution-data", None),
        ("automatic", "control-contract", None),
        ("automatic", "backend-rejects-unauthorized", None),
        ("attested", None, None),
        ("attested", None, None),
    ]
    assert [i.probe for i in runbook.no_go] == ["auth-source-ambiguous", "audit-complete", "rollback-clarity"]
    # Go 7 is the contract probe AND a person's word that web and mobile were validated.
    assert [i.id for i in runbook.go if i.attestation] == ["go-kill-switch-maintenance"]
    assert runbook.item("go-kill-switch-maintenance").attestation == "web and mobile validation"
    assert runbook.item("kill-switch-maintenance-clients").kind == "attested"


def test_texts_follow_the_runbook(runbook: Runbook) -> None:
    assert runbook.item("go-pnpm-verify").text == "`pnpm verify` passes"
    assert runbook.item("nogo-rollback-unclear").text == "rollback owner or rollback commands are unclear"
    assert runbook.trigger("tenant").text == (
        "incorrect tenant scoping leaks another user's profile, orders, alerts or history"
    )
    assert runbook.rollback.actions[0].text == "stop rollout to additional users immediately"
    assert runbook.rollback.actions[-1].text == "preserve audit logs and operational events for incident review"
    assert runbook.rollback.data_rule.startswith("do not rewrite or delete Cosmos control-plane state")
    assert runbook.smoke.manual[0].text == "Sign in on a fresh install."
    assert "Cosmos-backed control-plane" in runbook.stages[0].checks[0].text


def test_every_item_is_well_formed(runbook: Runbook) -> None:
    for _, item in runbook.labelled_items():
        assert (item.kind == "automatic") == (item.probe is not None), item.id
        assert item.probe is None or item.probe in KNOWN_PROBES
    signal_triggers = {s.trigger for s in runbook.signals()} - {None}
    assert signal_triggers <= set(TRIGGER_IDS)


def test_accessors_raise_key_error_for_unknown_ids(runbook: Runbook) -> None:
    assert runbook.find_item("nope") is None
    for lookup in (runbook.stage, runbook.stage_index, runbook.item, runbook.trigger):
        with pytest.raises(KeyError):
            lookup("nope")


def load_edited(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(SHIPPED)
    edit(data)
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def setter(section: str, index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data[section][index][key] = value

    return edit


def test_unknown_probe(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("go", 3, "probe", "platform-auth-v2"))
    assert "go item 'go-platform-auth': unknown probe 'platform-auth-v2'" in message
    assert "github-check" in message  # lists the known ones


def test_duplicate_id_across_sections(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("no_go", 0, "id", "go-pnpm-verify"))
    assert "duplicate id 'go-pnpm-verify' in go and no_go" in message

    def clash(data: dict[str, Any]) -> None:
        data["monitoring"]["first_24h"][0]["id"] = "stop-rollout"

    assert "duplicate id 'stop-rollout' in rollback.actions and monitoring" in load_edited(tmp_path, clash)


def test_automatic_item_without_probe(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        del data["go"][4]["probe"]

    assert "go item 'go-cosmos-control-plane': automatic items need a probe" in load_edited(tmp_path, edit)


def test_attested_item_with_probe(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("go", 8, "probe", "platform-auth"))
    assert "go item 'go-mobile-interventions': attested items take no probe" in message


def test_attestation_only_on_automatic_items_with_a_system_probe(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("go", 8, "attestation", "web and mobile validation"))
    assert "go item 'go-mobile-interventions': attested items are attested as a whole" in message

    def on_composite(data: dict[str, Any]) -> None:
        data["stages"][3]["checks"][0]["attestation"] = "a person agrees"

    message = load_edited(tmp_path, on_composite)
    assert "item 'operator-go-gate': composite probe 'go-gate' takes no attestation" in message
    message = load_edited(tmp_path, setter("go", 6, "attestation", "  "))
    assert "go[6].attestation (id 'go-kill-switch-maintenance'): String should have at least 1 character" in message


def test_github_check_needs_a_check_name(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("go", 1, "params", {}))
    assert "go item 'go-pnpm-lint': probe 'github-check' needs params.check" in message


def test_unknown_or_later_stability_stage(tmp_path: Path) -> None:
    def since(index: int, value: str) -> Callable[[dict[str, Any]], None]:
        def edit(data: dict[str, Any]) -> None:
            data["stages"][index].setdefault("entry", {})["backend_deploy_since"] = value

        return edit

    message = load_edited(tmp_path, since(4, "mobile-beta"))
    assert "stage 'broader-production-cutover': entry.backend_deploy_since names 'mobile-beta'" in message
    message = load_edited(tmp_path, since(0, "mobile-internal-beta"))
    assert "stage 'backend-internal-validation'" in message and "not an earlier stage" in message


def test_a_negative_or_misspelt_entry_condition_stops_the_bot(tmp_path: Path) -> None:
    def soak(value: Any) -> Callable[[dict[str, Any]], None]:
        def edit(data: dict[str, Any]) -> None:
            data["stages"][2]["entry"]["soak"] = value

        return edit

    assert "stages[2].entry.soak (id 'mobile-internal-beta')" in load_edited(tmp_path, soak("-PT1H"))

    def misspelt(data: dict[str, Any]) -> None:
        data["stages"][4]["entry"]["manual_smok"] = True

    assert "entry.manual_smok" in load_edited(tmp_path, misspelt)


@pytest.mark.parametrize("section", ["stages", "go", "no_go", "smoke", "rollback", "monitoring", "version"])
def test_missing_section(tmp_path: Path, section: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        del data[section]

    assert f"{section}: Field required" in load_edited(tmp_path, edit)


def test_structure_errors_name_the_field_and_nearest_id(tmp_path: Path) -> None:
    message = load_edited(tmp_path, setter("go", 0, "prob", "github-check"))
    assert "go[0].prob (id 'go-pnpm-verify'): Extra inputs are not permitted" in message
    message = load_edited(tmp_path, setter("no_go", 2, "kind", "auto"))
    assert "no_go[2].kind (id 'nogo-rollback-unclear'): Input should be 'automatic' or 'attested'" in message

    def nested(data: dict[str, Any]) -> None:
        del data["stages"][1]["checks"][2]["text"]

    assert "stages[1].checks[2].text (id 'web-config-writes'): Field required" in load_edited(tmp_path, nested)
    assert "version" in load_edited(tmp_path, lambda data: data.update(version=2))


def test_trigger_ids_are_the_contract_values(tmp_path: Path) -> None:
    def rename(data: dict[str, Any]) -> None:
        data["rollback"]["triggers"][0]["id"] = "authn"

    message = load_edited(tmp_path, rename)
    assert "rollback.triggers: ids must be exactly auth, tenant, controls, config, recovery" in message
    assert "monitoring signal 'platform-auth-failures': unknown trigger 'auth'" in message  # all problems at once


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    for text, expected in [
        ("version: 1\nstages: [\n", "not valid YAML"),
        ("version: 1\ngo: []\ngo: []\n", "duplicate key 'go' at line 3"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RunbookError, match=expected) as caught:
            load_runbook(path)
        assert str(caught.value).startswith(str(path))
    with pytest.raises(RunbookError, match="cannot read the runbook"):
        load_runbook(tmp_path / "missing.yaml")
