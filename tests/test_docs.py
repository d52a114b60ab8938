"""Docs that are generated from code stay in sync with it."""

from __future__ import annotations

from pathlib import Path

from policystrata.factdoc import render_facts_doc

ROOT = Path(__file__).resolve().parent.parent


def test_facts_doc_matches_declarations() -> None:
    page = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
    assert page == render_facts_doc(), (
        "docs/facts.md is stale: run `uv run python -m policystrata.factdoc > docs/facts.md`"
    )


def test_every_declared_fact_is_documented() -> None:
    from policystrata.engine import load_program
    from policystrata.paths import rule_files

    page = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
    for pred in load_program(rule_files()).decls:
        assert f"`{pred}(" in page, pred
