"""The rollback reason as the revert workflow receives it."""

from __future__ import annotations

from bot.rollback.reason import MAX_REASON_CHARS, workflow_reason


def test_shell_and_expression_syntax_is_broken_apart_but_the_words_stay() -> None:
    sent = workflow_reason("auth down $(curl x.sh) `id` ${{ secrets.GITHUB_TOKEN }} see INC-42")
    assert "$(" not in sent and "`" not in sent and "${{" not in sent
    assert sent == "auth down $ (curl x.sh) 'id' $ {{ secrets.GITHUB_TOKEN }} see INC-42"


def test_control_and_bidi_characters_are_dropped_and_whitespace_collapsed() -> None:
    sent = workflow_reason("orders\u202e gnikael\u202c\x00\x1b[31m\tleak\r\nin\u200b prod\u2066")
    assert sent == "orders gnikael[31m leak in prod"
    assert all(ch.isprintable() for ch in sent)


def test_length_is_bounded_and_an_empty_reason_still_says_something() -> None:
    sent = workflow_reason("x" * 2000)
    assert len(sent) == MAX_REASON_CHARS and sent.endswith("…")
    assert workflow_reason("\u202e\x00 ") == "(no reason given)"
    assert workflow_reason("tenant leak in orders") == "tenant leak in orders"


def test_the_example_workflow_takes_the_bots_inputs_and_reads_them_only_through_env() -> None:
    from pathlib import Path

    import yaml  # type: ignore[import-untyped]  # types-PyYAML is not installed here

    from rehearsal.sim.github import DEFAULT_WORKFLOWS

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "rollback.yml").read_text())
    inputs = doc[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the `on:` key as True
    assert {name: spec["required"] for name, spec in inputs.items()} == DEFAULT_WORKFLOWS["rollback.yml"]
    assert "inputs.request_id" in doc["run-name"]
    steps = [step for job in doc["jobs"].values() for step in job["steps"]]
    scripts = [step["run"] for step in steps if "run" in step]
    assert scripts and all("${{" not in script for script in scripts)
    assert any(step.get("env", {}).get("REASON") == "${{ inputs.reason }}" for step in steps)
