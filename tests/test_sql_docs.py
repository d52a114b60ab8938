"""docs/sql-facts.md is true to the code: every row's example query lowers to the facts the row
lists, and its meaning is the fact's declaration doc (rules/decl_sql.dl)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policystrata.engine import load_program
from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.paths import domains_dir, rule_files

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "sql-facts.md").read_text(encoding="utf-8")
SCHEMA = parse_schema((domains_dir() / "support_saas" / "schema.sql").read_text())
ROW = re.compile(r"^\| `(sql_\w+)\(([^`]*)\)` \| (.*?) \| `(.*?)` \| (.*) \|$")


def rows() -> list[tuple[str, str, str, str, list[str]]]:
    out = []
    for line in PAGE.splitlines():
        m = ROW.match(line)
        if m:
            pred, sig, meaning, query, facts = m.groups()
            listed = [f.strip().strip("`") for f in facts.split("<br>")]
            out.append((pred, sig, meaning, query, listed))
    return out


ROWS = rows()
PROGRAM = load_program(rule_files())


def test_every_sql_fact_has_a_row() -> None:
    decls = {p for p in PROGRAM.decls if p.startswith("sql_")}
    assert {r[0] for r in ROWS} == decls


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_row_is_true(row: tuple[str, str, str, str, list[str]]) -> None:
    pred, sig, meaning, query, listed = row
    decl = PROGRAM.decls[pred]
    assert f"{pred}({sig})" == str(decl).removeprefix(".decl ")
    assert meaning.replace("\\|", "|") == decl.doc
    got = {f.render() for f in lower_sql("c", query.replace("\\|", "|"), schema=SCHEMA).facts}
    for fact in listed:
        assert fact in got, (fact, sorted(g for g in got if g.startswith(pred)))
