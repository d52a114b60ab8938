"""Golden fact snapshots: one file per query in tests/sql_golden/ (reviewed by hand).

``STRATA_UPDATE_SNAPSHOTS=1 uv run pytest tests/test_sql_golden.py`` rewrites them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.paths import domains_dir

GOLDEN = Path(__file__).parent / "sql_golden"
SCHEMA = parse_schema((domains_dir() / "support_saas" / "schema.sql").read_text())


def load_queries() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    name = None
    for line in (GOLDEN / "queries.sql").read_text().splitlines():
        if line.startswith("-- name: "):
            name = line.removeprefix("-- name: ").strip()
        elif name and line.strip():
            out.append((name, line))
            name = None
    return out


QUERIES = load_queries()


def render(sql: str) -> str:
    result = lower_sql("q", sql, schema=SCHEMA)
    lines = [f"-- {sql}", f"-- read_only: {result.read_only}"]
    lines += [f"-- finding: {f}" for f in result.findings]
    return "\n".join(lines) + "\n" + result.facts.to_lines()


def test_enough_queries() -> None:
    assert len(QUERIES) >= 60
    assert len({n for n, _ in QUERIES}) == len(QUERIES)


@pytest.mark.parametrize(("name", "sql"), QUERIES, ids=[n for n, _ in QUERIES])
def test_golden(name: str, sql: str) -> None:
    path = GOLDEN / f"{name}.facts"
    got = render(sql)
    if os.environ.get("STRATA_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(got)
        if os.environ.get("STRATA_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"snapshot {path.name} was missing and has been written; review it")
    assert got == path.read_text()
