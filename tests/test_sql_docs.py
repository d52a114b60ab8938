"""docs/sql-facts.md is true to the code: every row's example query lowers to the facts the row
lists, and its meaning is the fact's declaration doc (rules/decl_sql.dl)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from policystrata.engine import load_program
from policystrata.engine.ast import Rule
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
    dialect = "postgres"
    if query.startswith("clickhouse: "):  # an example in the ClickHouse dialect
        dialect, query = "clickhouse", query.removeprefix("clickhouse: ")
    sql = query.replace("\\|", "|")
    got = {f.render() for f in lower_sql("c", sql, dialect, schema=SCHEMA).facts}
    for fact in listed:
        assert fact in got, (fact, sorted(g for g in got if g.startswith(pred)))


CHECK_ROW = re.compile(r"^\| ([a-z_ /]+?)(?: \(.*?\))? \| (\w+) \| (\w+)(?: \((.*)\))? \| .* \|$")


def compiler_check_rows() -> list[tuple[str, str, str, str]]:
    section = PAGE.split("## Compiler rules", 1)[1].split("\n\n", 2)[1]
    out = []
    for line in section.splitlines()[2:]:
        m = CHECK_ROW.match(line)
        assert m, line
        checks, cls, guard, extra = m.groups()
        for check in checks.split(" / "):
            out.append((check.strip(), cls, guard, extra or ""))
    return out


def test_compiler_check_table_matches_the_rules() -> None:
    """Every compiler check in the table is a layer_fault rule of that class, guarded by the
    responsibility the table names (and every such rule is in the table)."""
    rows = compiler_check_rows()
    heads: dict[str, list[Rule]] = {}
    for rule in PROGRAM.rules:
        args = [str(a).strip('"') for a in rule.head.args]
        compiler = rule.head.pred == "layer_fault" and args[1] == "compiler"
        if compiler and Path(rule.file).name == "compiler.dl":
            heads.setdefault(args[3], []).append(rule)
    assert {r[0] for r in rows} == set(heads)
    surfaces = yaml.safe_load((domains_dir() / "support_saas" / "surfaces.yaml").read_text())
    shipped = set(surfaces["contracts"]["compiler"]["responsibilities"])
    for check, cls, guard, extra in rows:
        # the shipped contract lists the guard, so the page must not call it pending
        assert guard in shipped and "not yet" not in extra, (check, guard, extra)
        for rule in heads[check]:
            assert str(rule.head.args[2]).strip('"') == cls, check
            body = [str(lit).replace('"', "") for lit in rule.body]
            assert f"responsible(compiler, {guard})" in body, (check, body)
            for obligation in re.findall(r"accepts the (\w+) obligation", extra):
                assert f"accepts_obligation(compiler, {obligation})" in body, (check, body)
