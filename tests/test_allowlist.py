"""The execution allow-list (policystrata/lower/sql/allowlist.py): what may ever be sent to a
server. Examples, the realistic corpora (golden queries, the reference stack's SQL), sqlglot's
whole function table, and hypothesis generators of schema shapes and identifier escapes."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.db.ddl import prepare_script
from policystrata.lower.sql import lower_sql
from policystrata.lower.sql.allowlist import (
    POSTGRES_FUNCTIONS,
    decode_unicode_escapes,
    execution_refusals,
)
from policystrata.lower.sql.guard import is_denied_name
from policystrata.paths import domains_dir

GOLDEN = Path(__file__).parent / "sql_golden"
SUPPORT = prepare_script((domains_dir() / "support_saas" / "schema.sql").read_text(), "s").relations


def refused(sql: str, relations: set[str] | frozenset[str] = SUPPORT) -> list[str]:
    return [r.reason for r in execution_refusals(sql, relations=relations)]


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize(
    "sql",
    [
        "select count(distinct t.id) as value, a.region from accounts a "
        "left join support_tickets t on t.account_id = a.id "
        "where a.tenant_id in ('acme') and t.opened_at >= date '2026-05-01' "
        "group by a.region order by 1 desc limit 100",
        "select sum(i.net_amount_cents) filter (where i.invoice_date < '2026-06-01') "
        "from invoices i where i.tenant_id = current_setting('app.tenant_id', true) limit 10",
        "with x as (select account_id, count(*) as n from support_tickets group by 1) "
        "select a.name, coalesce(x.n, 0) from accounts a left join x on x.account_id = a.id",
        "select date_trunc('month', invoice_date) as m, round(avg(net_amount_cents)::numeric, 2) "
        "from invoices where tenant_id = $1 group by 1 limit 12",
        "select region, rank() over (partition by region order by created_on desc) from accounts",
        "select upper(name) || ' ' || lower(region), length(name), nullif(region, '') "
        "from accounts where name ilike 'a%' and region between 'a' and 'z' limit 5",
        "select extract(year from created_on), date_part('month', created_on), now(), "
        "current_date, interval '1 day' from accounts limit 1",
        "select exists (select 1 from agents g where g.tenant_id = a.tenant_id) from accounts a",
        "select id from accounts union all select id from agents except select id from tenants",
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) "
        "select count(*) from r",
        "select x.a from (select 1 as a) x(a)",
        "select (a.id)::text, cast(a.created_on as timestamp) from public.accounts a",
    ],
)
def test_analytics_sql_is_executed(sql: str) -> None:
    assert refused(sql) == []


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ('select U&"pg\\005fsleep"(30) limit 1', 'U&"pg\\005fsleep"'),
        ("select U&'\\0061' from accounts", "U&'\\0061'"),
        ("select pg_catalog.set_config('app.tenant_id', 'beta', true)", "pg_catalog.set_config"),
        ("select ts_stat('select 1')", "ts_stat()"),
        ("select * from pg_roles", "pg_roles"),
        ("select * from pg_catalog.pg_authid", "pg_catalog.pg_authid"),
        ("select * from generate_series(1, 10)", "generate_series"),
        ("select '1'::regclass", "::regclass"),
        ("select a::mytype from accounts a", "::mytype"),
        ("select current_setting('data_directory')", "current_setting('data_directory')"),
        ("select current_setting(region) from accounts", "current_setting(region)"),
        ("select name from accounts where name ~ 'a'", "name ~ 'a'"),
        ("select date_to_date_str(created_on) from accounts", "date_to_date_str(created_on)"),
        ('select "Count"(*) from accounts', "Count()"),
        ("select current_user", "CURRENT_USER"),
        ("select 1; select 2", "statement"),
        ("select from where", "statement"),
    ],
)
def test_off_the_list_is_named_with_its_span(sql: str, construct: str) -> None:
    first = execution_refusals(sql, relations=SUPPORT)[0]
    assert construct in first.construct
    if first.span is not None:
        assert 0 <= first.span[0] < first.span[1] <= len(sql)


def test_a_dialect_without_a_list_executes_nothing() -> None:
    assert refused("select 1", relations=set()) == []
    reasons = [
        r.reason for r in execution_refusals("select 1", relations=set(), dialect="clickhouse")
    ]
    assert reasons == ["no execution allow-list for the clickhouse dialect"]


# ---------------------------------------------------------------- realistic corpora


def test_golden_queries_run_except_documented_constructs() -> None:
    """Every read-only golden query runs, except those using a table function, ANY(array),
    TABLESAMPLE or a JSON/row function: off the list on purpose."""
    off = {}
    for path in sorted(GOLDEN.glob("*.facts")):
        lines = path.read_text().splitlines()
        sql, read_only = lines[0][3:], lines[1].endswith("True")
        if read_only and (reasons := refused(sql)):
            off[path.stem] = reasons[0]
    assert sorted(off) == [
        "limit_inside_derived_table",  # generate_series
        "param_any_array",  # = ANY($1)
        "qualified_star_in_function",  # to_jsonb(a.*)
        "table_function",  # generate_series(...) g(n)
        "tablesample",
        "unnest_function",
        "whole_row_reference",  # row_to_json(a)
    ], off


def test_the_reference_stack_sql_always_runs() -> None:
    from policystrata.bench.runner import Runner
    from policystrata.bench.suites import resolve_suite
    from policystrata.check import Checker

    checker = Checker.open("support_saas")
    runner = Runner(checker, minimize=False)
    seen = 0
    for case in resolve_suite(checker.domain, "seeded").cases():
        if case.query is None:
            continue
        canonical, faulted = runner.stack_runs(case, case.query)
        for run in (canonical, faulted):
            if isinstance(run, str) or run.sql is None:
                continue
            seen += 1
            assert refused(run.sql) == [], run.sql
    assert seen > 50


def test_sqlglot_cannot_smuggle_a_function_onto_the_list() -> None:
    """sqlglot rebuilds many calls as typed nodes (``date_part`` -> Extract, ``pow`` -> Pow,
    ``date_to_date_str`` -> Cast): whatever node it builds, a call is executed only when the
    name PostgreSQL will call is on the list. Every function name sqlglot knows, with 0-3
    arguments."""
    from sqlglot.dialects.postgres import Postgres

    parser = Postgres.Parser
    names = set(parser.FUNCTIONS) | set(parser.FUNCTION_PARSERS)
    names |= {str(k) for k in parser.NO_PAREN_FUNCTIONS}
    smuggled = {}
    for name in sorted(names):
        for args in ("", "a", "a, b", "a, b, c"):
            sql = f"select {name}({args}) from t"
            if not refused(sql, {"t"}) and name.lower() not in POSTGRES_FUNCTIONS:
                smuggled.setdefault(name, []).append(args)
    # LIKE(a, b) / ILIKE(a, b): read as the pattern-match operator, which is on the list
    assert set(smuggled) <= {"LIKE", "ILIKE"}, smuggled


# ---------------------------------------------------------------- generators


IDENT = st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=10).filter(
    lambda s: s[0] != "_" and not s.startswith("pg_")
)
RESERVED = {
    "all",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
    "filter",
    "over",
    "interval",
    "left",
    "right",
    "full",
    "inner",
    "outer",
    "cross",
    "join",
    "natural",
    "is",
    "like",
    "ilike",
    "between",
    "exists",
    "values",
    "set",
    "row",
    "rows",
    "first",
    "last",
    "nulls",
    "by",
    "within",
    "escape",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "time",
    "timestamp",
    "date",
    "char",
    "varchar",
    "boolean",
    "int",
    "integer",
    "text",
    "numeric",
}
NAME = IDENT.filter(lambda s: s not in RESERVED and s not in POSTGRES_FUNCTIONS)
SAFE_FUNCS = sorted(
    f
    for f in POSTGRES_FUNCTIONS
    if f
    not in {
        "current_setting",
        "extract",
        "position",
        "substring",
        "trim",
        "percentile_cont",
        "percentile_disc",
        "string_agg",
        "now",
        "row_number",
        "rank",
        "dense_rank",
        "percent_rank",
        "cume_dist",
        "ntile",
        "lag",
        "lead",
        "first_value",
        "last_value",
        "nth_value",
        "make_date",
        "make_time",
        "make_timestamp",
        "make_interval",
        "div",
        "date_bin",
        "to_char",
        "to_date",
        "to_timestamp",
        "to_number",
        "date_part",
        "date_trunc",
        "concat_ws",
        "split_part",
        "replace",
        "lpad",
        "rpad",
        "left",
        "right",
        "strpos",
        "mod",
        "power",
        "starts_with",
        "round",
        "trunc",
        "greatest",
        "least",
        "nullif",
        "coalesce",
        "concat",
        "age",
    }
)
DENIED = [
    "pg_sleep",
    "set_config",
    "pg_read_file",
    "lo_import",
    "dblink",
    "query_to_xml",
    "ts_stat",
    "ts_rewrite",
    "pg_terminate_backend",
    "pg_advisory_lock",
    "xpath",
    "pg_ls_dir",
    "version",
    "inet_server_addr",
    "txid_current",
    "nextval",
]


@st.composite
def shapes(draw: st.DrawFn) -> tuple[set[str], str]:
    """A domain of 1-4 tables (any names) and an analytics query over it made of listed
    constructs: aggregates and functions, joins, a CTE, predicates, casts, LIMIT."""
    tables = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    cols = draw(st.lists(NAME, min_size=2, max_size=4, unique=True))
    t0 = tables[0]
    func = draw(st.sampled_from(SAFE_FUNCS))
    agg = draw(st.sampled_from(["count", "sum", "avg", "min", "max"]))
    c1, c2 = cols[0], cols[1]
    select = [f"{agg}(a.{c1}) as v", f"{func}(a.{c2}) as f"]
    from_ = f"{t0} a"
    if len(tables) > 1 and draw(st.booleans()):
        from_ += f" join {tables[1]} b on b.{c1} = a.{c1}"
    where = draw(
        st.sampled_from(
            [
                f"a.{c1} = current_setting('app.tenant_id', true)",
                f"a.{c2} in ('x', 'y') and a.{c1} is not null",
                f"a.{c2}::text like 'x%' or a.{c1} between 1 and 10",
                f"a.{c1} = $1",
            ]
        )
    )
    sql = f"select {', '.join(select)} from {from_} where {where} group by a.{c2} limit 10"
    if draw(st.booleans()):
        sql = f"with q as (select * from {t0}) " + sql.replace(f"from {t0} a", "from q a", 1)
    return set(tables), sql


@settings(max_examples=150, deadline=None)
@given(shapes())
def test_any_schema_shape_of_listed_constructs_runs(shape: tuple[set[str], str]) -> None:
    tables, sql = shape
    assert lower_sql("h", sql).read_only
    assert refused(sql, tables) == [], sql


@settings(max_examples=150, deadline=None)
@given(shapes(), st.sampled_from(DENIED), st.integers(0, 4))
def test_one_construct_off_the_list_keeps_any_shape_from_running(
    shape: tuple[set[str], str], bad: str, how: int
) -> None:
    tables, sql = shape
    intruder = [
        f"{bad}(1)",
        f'"{bad}"(1)',
        f"pg_catalog.{bad}(1)",
        "(select count(*) from pg_roles)",
        "'pg_class'::regclass",
    ][how]
    hostile = sql.replace(" as v,", f" as v, {intruder} as z,", 1)
    assert refused(hostile, tables), hostile


def _u_escape(name: str, which: list[bool]) -> str:
    return "".join(f"\\{ord(c):04x}" if esc else c for c, esc in zip(name, which, strict=False))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(POSTGRES_FUNCTIONS | set(DENIED))), st.data())
def test_escaped_and_quoted_names_never_run(name: str, data: st.DataObject) -> None:
    """``U&"..."`` (any escaping) is refused whatever it decodes to; a quoted name runs only
    when it is exactly the listed (lower-case) name; a denied name is refused in every form."""
    which = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    escaped = f'U&"{_u_escape(name, which)}"'
    assert decode_unicode_escapes(escaped[3:-1]) == name
    args = "'app.x'" if name == "current_setting" else "1"
    assert refused(f"select {escaped}({args})", {"t"})
    upper = f'"{name.upper()}"'
    assert refused(f"select {upper}({args})", {"t"})
    if name in DENIED or is_denied_name(name):
        for form in (name, f'"{name}"', name.upper(), f"pg_catalog.{name}"):
            assert refused(f"select {form}({args})", {"t"}), form


def test_docs_show_the_list_the_code_has() -> None:
    """docs/sql-facts.md names exactly the functions and cast types of the PostgreSQL list."""
    import re

    from policystrata.lower.sql.allowlist import POSTGRES_CAST_TYPES

    page = (Path(__file__).resolve().parent.parent / "docs" / "sql-facts.md").read_text()
    para = page.split("**Execution allow-list (fail closed, stricter).**", 1)[1].split("\n\n", 1)[0]
    functions_part = para.split("will call): ", 1)[1].split("; `current_setting` only", 1)[0]
    casts_part = para.split("typed literals) to ", 1)[1].split("; comparison", 1)[0]
    assert set(re.findall(r"`([^`]+)`", functions_part)) == set(POSTGRES_FUNCTIONS)
    assert set(re.findall(r"`([^`]+)`", casts_part)) == set(POSTGRES_CAST_TYPES)
