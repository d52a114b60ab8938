"""report.md: a PR comment with a findings table and a collapsible proof per finding."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from policystrata.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "scan"


def test_markdown_has_table_and_collapsible_proofs(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "mixed", tmp_path / "mixed")
    out = tmp_path / "mixed" / "out"
    CliRunner().invoke(
        main, ["scan", "--config", str(tmp_path / "mixed" / "policystrata.yaml"), "--out", str(out)]
    )
    md = (out / "report.md").read_text()
    assert md.startswith("## PolicyStrata scan: ❌ failed")
    assert "| | severity | layer | class | rule | where | finding |" in md
    # the rule column is the first part of each finding's stable id (the <summary> shows it)
    assert "| `input.sql_rejected` | `traces.jsonl:3` |" in md
    assert "<code>input.sql_rejected/traces.jsonl#typo_001/unparseable_sql</code>" in md
    assert "`unknown_principal` |" not in md
    assert md.count("<details>") == 4 and md.count("</details>") == 4
    assert "localize.first_failing_layer" in md  # the proof tree of a witness finding
    assert "`traces.jsonl:4`" in md
    assert "strata check --domain support_saas --case-id write_001" in md
