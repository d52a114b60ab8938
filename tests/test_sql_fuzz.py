"""Hostile-string corpus (tests/sql_fuzz/hostile.txt) and property tests of the SQL lowering."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.paths import domains_dir

CORPUS = Path(__file__).parent / "sql_fuzz" / "hostile.txt"
SCHEMA = parse_schema((domains_dir() / "support_saas" / "schema.sql").read_text())


def corpus() -> list[tuple[str, str]]:
    out = []
    for line in CORPUS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        verdict, _, sql = line.partition("\t")
        out.append((verdict, sql))
    return out


@pytest.mark.parametrize(("verdict", "sql"), corpus())
def test_hostile_corpus(verdict: str, sql: str) -> None:
    result = lower_sql("f", sql)
    if verdict == "reject":
        assert not result.read_only, sql
        assert result.findings, sql
        assert all(f.kind in ("unparseable_sql", "not_read_only") for f in result.findings)
        assert not result.facts.by_pred("sql_read_only")
    else:
        assert result.read_only, (sql, result.findings)
        assert result.findings == []


# ---- random well-formed SELECTs over support_saas ------------------------------------------

TABLES = {name: [c for c in t.columns if c != "tenant_id"] for name, t in SCHEMA.tables.items()}
TENANT_TABLES = [t for t, info in SCHEMA.tables.items() if "tenant_id" in info.columns]


@st.composite
def queries(draw: st.DrawFn) -> dict[str, object]:
    table = draw(st.sampled_from(TENANT_TABLES))
    cols = TABLES[table]
    preds = []
    tenant = draw(st.sampled_from(["acme", "beta", None]))
    under_or = draw(st.booleans())
    if tenant is not None:
        preds.append(("tenant_id", f"'{tenant}'"))
    for _ in range(draw(st.integers(0, 3))):
        col = draw(st.sampled_from(cols))
        preds.append((col, draw(st.sampled_from(["'x'", "1", "$1", "'2026-05-01'"]))))
    return {
        "table": table,
        "cols": draw(st.lists(st.sampled_from(cols), min_size=1, max_size=3)),
        "preds": preds,
        "under_or": under_or and len(preds) > 1,
        "limit": draw(st.one_of(st.none(), st.integers(1, 5000))),
        "agg": draw(st.booleans()),
    }


def render(q: dict[str, object], alias: str, rng: random.Random, noise: bool) -> str:
    preds = [f"{alias}.{c} = {v}" for c, v in q["preds"]]  # type: ignore[attr-defined]
    rng.shuffle(preds)
    ws = (
        (lambda: rng.choice([" ", "  ", "\n", " /* c; 'x' */ ", " -- x\n"]))
        if noise
        else (lambda: " ")
    )
    cols = ", ".join(f"{alias}.{c}" for c in q["cols"])  # type: ignore[attr-defined]
    if q["agg"]:
        cols = f"count(distinct {alias}.id)"
    joiner = f"{ws()}or{ws()}" if q["under_or"] else f"{ws()}and{ws()}"
    sql = f"select{ws()}{cols}{ws()}from{ws()}{q['table']}{ws()}{alias}"
    if preds:
        sql += f"{ws()}where{ws()}" + joiner.join(preds)
    if q["limit"] is not None:
        sql += f"{ws()}limit {q['limit']}"
    return sql


def tenant_verdict(sql: str) -> tuple[bool, frozenset[tuple[object, ...]]]:
    """Alias-independent tenant-scope summary: guaranteed tenant predicates per table."""
    r = lower_sql("h", sql, schema=SCHEMA)
    alias_table = {(f.args[1], f.args[2]): f.args[3] for f in r.facts.by_pred("sql_reads")}
    out = set()
    for f in r.facts.by_pred("sql_pred"):
        _c, s, a, col, op, vk, v, strength = f.args
        if col == "tenant_id":
            out.add((alias_table.get((s, a)), op, vk, v, strength))
    return r.read_only, frozenset(out)


@settings(max_examples=150, deadline=None)
@given(queries(), st.integers(0, 10_000))
def test_random_selects(q: dict[str, object], seed: int) -> None:
    rng = random.Random(seed)
    plain = render(q, "t", random.Random(0), noise=False)
    r1 = lower_sql("h", plain, schema=SCHEMA)
    r2 = lower_sql("h", plain, schema=SCHEMA)
    assert r1.read_only and not r1.findings
    assert r1.facts.to_lines() == r2.facts.to_lines()  # deterministic
    base = tenant_verdict(plain)
    renamed = render(q, rng.choice(["x", "acc", "q1", "zz"]), random.Random(seed), noise=False)
    noisy = render(q, "t", rng, noise=True)
    assert tenant_verdict(renamed) == base
    assert tenant_verdict(noisy) == base


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = lower_sql("x", text)
    assert isinstance(result.read_only, bool)
    if not result.read_only:
        assert result.findings


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(re.findall(r"\S+", " ".join(s for _, s in corpus()))), max_size=12))
def test_token_soup_never_raises(words: list[str]) -> None:
    result = lower_sql("x", " ".join(words))
    if not result.read_only:
        assert result.findings
