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

CORPUS = Path(__file__).parent / "sql_fuzz" / "hostile.txt"
# the denormalised shape (every tenant-owned table has tenant_id): the oracle below reads it
DENORMALIZED = Path(__file__).parent / "fixtures" / "domains" / "denormalized"
SCHEMA = parse_schema((DENORMALIZED / "schema.sql").read_text())


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


# ---- random joins, CTEs and derived tables: the verdict ------------------------------------
# A query shape (how tickets and accounts are combined), tenant predicates for each side, extra
# predicates and a time window. Variants of one shape (aliases renamed, whitespace / comments /
# upper case, predicates reordered, inner joins written the other way round) must get the same
# compiler verdict, and that verdict must be the one the shape implies.

FORMS = ("join", "left", "comma", "cte_parent", "derived_parent", "cte_child", "exists", "in_sub")
ALIASES = ("t", "a", "x1", "acct", "tk", "q", "p2", "zz", "src", "par", "k9", "w")
_CHECKER: list[object] = []


def checker() -> object:
    if not _CHECKER:
        from policystrata.check import Checker
        from policystrata.model import load_domain

        _CHECKER.append(Checker(load_domain(DENORMALIZED)))
    return _CHECKER[0]


@st.composite
def shapes(draw: st.DrawFn, form: str) -> dict[str, object]:
    return {
        "form": form,
        "t_tenant": draw(st.sampled_from([None, "acme", "beta"])),
        "a_tenant": draw(st.sampled_from([None, "acme", "beta"])),
        "t_or": draw(st.booleans()),
        "t_extra": draw(st.lists(st.sampled_from(["severity = 'high'", "escalated"]), max_size=2)),
        "a_extra": draw(st.booleans()),
        "window": draw(st.booleans()),
    }


def render_shape(
    q: dict[str, object],
    names: tuple[str, str, str],
    rng: random.Random | None = None,
    swap: bool = False,
) -> str:
    """SQL for a shape; ``names`` are the tickets, accounts and CTE / derived aliases; ``rng``
    shuffles predicate order."""
    t, a, p = names
    form = q["form"]

    def shuffled(items: list[str]) -> list[str]:
        items = list(items)
        if rng is not None:
            rng.shuffle(items)
        return items

    def t_preds(qual: str) -> list[str]:
        out = [f"{qual}{e}" for e in q["t_extra"]]  # type: ignore[attr-defined]
        if q["t_tenant"]:
            pred = f"{qual}tenant_id = '{q['t_tenant']}'"
            out.append(f"({pred} or {qual}severity = 'low')" if q["t_or"] else pred)
        return out

    def a_preds(qual: str) -> list[str]:
        out = [f"{qual}region = 'eu'"] if q["a_extra"] else []
        if q["a_tenant"]:
            out.append(f"{qual}tenant_id = '{q['a_tenant']}'")
        return out

    window = (
        [f"{t}.opened_at >= date '2026-05-01'", f"{t}.opened_at < date '2026-06-01'"]
        if q["window"]
        else []
    )
    where: list[str] = []
    head = f"select count(distinct {t}.id) as value"
    if form in ("join", "left", "comma"):
        tickets, accounts = f"support_tickets {t}", f"accounts {a}"
        if form == "comma":
            src = f"{accounts}, {tickets}" if swap else f"{tickets}, {accounts}"
            where.append(f"{t}.account_id = {a}.id")
        else:
            kind = "left join" if form == "left" else "join"
            first, second = (accounts, tickets) if swap and form == "join" else (tickets, accounts)
            src = f"{first} {kind} {second} on {a}.id = {t}.account_id"
        where += t_preds(f"{t}.") + a_preds(f"{a}.")
        sql = f"{head} from {src}"
    elif form in ("cte_parent", "derived_parent"):
        inner = "select id, region, tenant_id from accounts"
        inner_preds = shuffled(a_preds(""))
        if inner_preds:
            inner += " where " + " and ".join(inner_preds)
        ref = p if form == "cte_parent" else f"({inner}) {p}"
        pair = (ref, f"support_tickets {t}") if swap else (f"support_tickets {t}", ref)
        sql = f"{head} from {pair[0]} join {pair[1]} on {p}.id = {t}.account_id"
        if form == "cte_parent":
            sql = f"with {p} as ({inner}) {sql}"
        where += t_preds(f"{t}.")
    elif form == "cte_child":
        inner = "select * from support_tickets"
        inner_preds = shuffled(t_preds(""))
        if inner_preds:
            inner += " where " + " and ".join(inner_preds)
        pair = (f"accounts {a}", t) if swap else (t, f"accounts {a}")
        sql = (
            f"with {t} as ({inner}) {head} from {pair[0]} join {pair[1]} on {a}.id = {t}.account_id"
        )
        where += a_preds(f"{a}.")
    else:
        sub_where = " and ".join(shuffled(a_preds(f"{a}.")))
        if form == "exists":
            cond = f"{a}.id = {t}.account_id" + (f" and {sub_where}" if sub_where else "")
            where.append(f"exists (select 1 from accounts {a} where {cond})")
        else:
            sub = f"select {a}.id from accounts {a}" + (f" where {sub_where}" if sub_where else "")
            where.append(f"{t}.account_id in ({sub})")
        sql = f"{head} from support_tickets {t}"
        where += t_preds(f"{t}.")
    where = shuffled(where + window)
    if where:
        sql += " where " + " and ".join(where)
    return sql + " limit 100"


def expected_verdict(q: dict[str, object]) -> set[str]:
    """The tenant verdict the shape implies (the only compiler checks it can fail)."""
    form = q["form"]
    t_ok = q["t_tenant"] == "acme" and not q["t_or"]
    a_ok = q["a_tenant"] == "acme"
    # a LEFT JOIN whose accounts side is filtered in WHERE is an inner join
    t_from_a = form != "left" or bool(q["a_tenant"] or q["a_extra"])
    a_from_t = True  # also IN (subquery): only the accounts matching t's account ids count
    out = set()
    if not (t_ok or (a_ok and t_from_a)):
        out.add("tenant_scope_missing:support_tickets")
    if not (a_ok or (t_ok and a_from_t)):
        out.add("tenant_scope_missing:accounts")
    if q["t_tenant"] == "beta":
        out.add("cross_tenant_literal:support_tickets")
    if q["a_tenant"] == "beta":
        out.add("cross_tenant_literal:accounts")
    return out


def verdict(sql: str) -> set[str]:
    from policystrata.case import Case
    from policystrata.ir import parse_ir

    ch = checker()
    case = Case(
        id="h",
        principal="acme_analyst",
        sql=sql,
        ir=parse_ir("ticket_count during last_month limit 100"),
    )
    result = ch.engine.evaluate(ch.case_facts(case))  # type: ignore[attr-defined]
    # the shapes vary tenancy; their extra filters and missing windows are semantic drift,
    # which tests/test_sql_rules.py judges
    return {
        f"{check}:{key}"
        for (_c, _s, cls, check, key) in result.atoms("layer_fault")
        if cls != "semantic_drift"
    }


def noisy(sql: str, rng: random.Random) -> str:
    """Upper-case everything outside string literals and put comments / line breaks between
    tokens (never inside a literal)."""
    parts = sql.split("'")
    for i in range(0, len(parts), 2):
        words = parts[i].upper().split(" ")
        parts[i] = "".join(
            w
            + (
                rng.choice([" ", "  ", "\n", " /* c; 'x' */ ", " -- x\n"])
                if j < len(words) - 1
                else ""
            )
            for j, w in enumerate(words)
        )
    return "'".join(parts)


@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=6, deadline=None)
@given(data=st.data(), seed=st.integers(0, 10_000))
def test_join_and_cte_shapes_get_the_implied_verdict_in_every_spelling(
    form: str, data: st.DataObject, seed: int
) -> None:
    q = data.draw(shapes(form))
    rng = random.Random(seed)
    base_names = ("t", "a", "p")
    plain = render_shape(q, base_names)
    expected = expected_verdict(q)
    assert verdict(plain) == expected, plain
    picked = rng.sample(ALIASES, 3)
    variants = [
        render_shape(q, (picked[0], picked[1], picked[2])),
        render_shape(q, base_names, rng=random.Random(seed)),
        noisy(plain, rng),
    ]
    if q["form"] != "left":
        variants.append(render_shape(q, base_names, swap=True))
    for sql in variants:
        assert verdict(sql) == expected, sql
