"""COMPAT.md §2: policy.yaml as published users write it — every metric expression form,
expression and token dimensions, bare / empty columns, published defaults, the published time
ranges on our deterministic calendar — loads and means what it says. Hypothesis generates the
shapes of expressions and calendars beyond the fixtures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.lower.policy import compile_domain
from policystrata.model import load_domain
from policystrata.model.calendar import PUBLISHED_AS_OF, PUBLISHED_TO_DATE, default_time_ranges
from policystrata.model.expressions import read_dimension, read_metric
from tests.compat.conftest import FIXTURES

RENTALS = FIXTURES / "domains" / "rentals_semantic"
ANALYTICS = FIXTURES / "domains" / "product_analytics"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def facts_of(path: Path) -> dict[str, set[tuple[object, ...]]]:
    out: dict[str, set[tuple[object, ...]]] = {}
    for f in compile_domain(load_domain(path)):
        out.setdefault(f.pred, set()).add(f.args)
    return out


# ---- every metric form of COMPAT.md §2 ----

#: metric -> its aggregates (func, distinct, table, column) as the SQL lowering reads them
EXPECTED_AGGS = {
    "reservations": {("sum", False, "?", "?")},  # SUM(1): a constant
    "reservation_value": {("sum", False, "reservation_value", "reservation_value")},
    "hosts": {("count", True, "reservations", "host_id")},  # count_distinct(x)
    "avg_nightly_rate": {("avg", False, "reservations", "nightly_rate")},  # average(x)
    "median_stay": {("percentile_cont", False, "?", "?")},  # median(x)
    "p90_stay": {("percentile_cont", False, "?", "?")},  # percentile(x)
    "balance_total": {("sum", False, "b", "account_balance")},  # leading comma
    "reservations_or_zero": {("sum", False, "?", "?")},  # , COALESCE(SUM(1), 0)
    "doubled_reservations": {("sum", False, "?", "?")},  # SUM(1) * 2
    "fee_estimate": {("sum", False, "reservation_value", "reservation_value")},
    "fee_per_guest": {
        ("sum", False, "reservation_value", "reservation_value"),
        ("count", True, "reservation_value", "guest_id"),
    },
    "listing_views": {("sum", False, "listing_views", "listing_views")},  # sum(<metric name>)
    "instant_value": {
        ("sum", False, "reservation_value", "is_instant"),
        ("sum", False, "reservation_value", "reservation_value"),
    },
    "referred_reservations": {("sum", False, "reservations", "referrer_id")},
    "instant_reservations": {("sum", False, "reservations", "is_instant")},
    "first_checkin": {("min", False, "reservations", "checkin_date")},
    "last_checkout": {("max", False, "reservations", "checkout_date")},
    "listings_with_id": {("count", False, "listings", "id")},  # count(id), bare column
    "sold_out_days": {("count", True, "availability", "calendar_date")},
}
#: derived metrics: no aggregate of their own, the metrics they name
EXPECTED_DERIVED = {
    "value_x_views": {"reservation_value", "listing_views"},
    "value_per_view": {"reservation_value", "listing_views"},  # NULLIF ratio
    "non_instant_value": {"reservation_value", "instant_value"},
    "adjusted_value": {"non_instant_value"},  # c.<metric> + 10
    "referral_share": {"reservations", "referred_reservations"},
    "blended_rate": {"instant_reservations", "reservations", "referred_reservations"},  # folded
}


def test_every_published_metric_form_loads_without_warnings_and_means_its_sql() -> None:
    d = load_domain(RENTALS)
    # the only warning is the principal whose id differs from its key (fixture on purpose)
    assert [w.key for w in d.warnings] == ["principals.auditor.id"]
    f = facts_of(RENTALS)
    aggs: dict[str, set[tuple[object, ...]]] = {}
    for m, *rest in f["metric_agg"]:
        aggs.setdefault(str(m), set()).add(tuple(rest))
    assert aggs == EXPECTED_AGGS
    derived: dict[str, set[object]] = {}
    for m, other in f["metric_uses_metric"]:
        derived.setdefault(str(m), set()).add(other)
    assert derived == EXPECTED_DERIVED
    assert ("sold_out_days", "availability", "sold_out", "=", "literal", True) in f["metric_filter"]
    assert "metric_expression_unknown" not in f
    # columns: [] falls back to the expression's columns; bare columns are the metric table's
    assert ("balance_total", "b", "account_balance") in f["metric_column"]
    assert ("listings_with_id", "listings", "id") in f["metric_column"]


def test_clickhouse_forms_mean_their_sql() -> None:
    f = facts_of(ANALYTICS)
    assert f["metric_agg"] == {
        ("clicks", "count", False, "clicks", "*"),  # count(): rows of the metric's table
        ("visits", "count", True, "clicks", "visit_id"),  # uniqExact
        ("members", "count", True, "clicks", "member_id"),
        ("purchases", "count", False, "clicks", "*"),  # countIf(c): count(*) FILTER (WHERE c)
        ("returning_members", "count", True, "clicks", "member_id"),  # uniqExactIf
    }
    assert f["metric_filter"] == {
        ("purchases", "clicks", "action", "=", "literal", "purchase"),
        ("returning_members", "clicks", "action", "=", "literal", "return"),
    }


def test_an_expression_that_is_not_understood_is_a_warning_and_a_fact(tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "d"
    shutil.copytree(RENTALS, d)
    text = (d / "policy.yaml").read_text()
    text = text.replace(
        "expression: average(nightly_rate)", "expression: \"{{ metric('nightly_rate') }}\""
    )
    (d / "policy.yaml").write_text(text)
    domain = load_domain(d)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "{{ metric(" in ln)
    [warning] = [w for w in domain.warnings if w.key == "metrics.avg_nightly_rate.expression"]
    assert str(warning).startswith(
        f"policy.yaml:{line}: metrics.avg_nightly_rate.expression: metric expression not "
        "understood (a template or struct literal, not SQL)"
    )
    f = facts_of(d)
    assert ("avg_nightly_rate", "a template or struct literal, not SQL") in f[
        "metric_expression_unknown"
    ]
    assert not any(m == "avg_nightly_rate" for m, *_ in f["metric_agg"])
    # and the CLI still checks (a warning on stderr, never exit 2)
    result = run(
        "check",
        "--domain-path",
        str(d),
        "--principal",
        "ops_lead",
        "--ir",
        "reservations during all_time limit 10",
    )
    assert result.exit_code == 0, result.output
    assert "warning: policy.yaml:" in result.stderr


def test_metric_semantics_of_pseudo_functions_are_checked() -> None:
    """count_distinct(host_id) means COUNT(DISTINCT host_id): SQL that drops DISTINCT drifts."""
    checker = Checker.open(RENTALS)
    ok = Case(
        id="ok",
        principal="host_viewer",
        ir=None,
        sql="select count(distinct r.host_id) as value from reservations r limit 10",
    )
    from policystrata.ir import parse_ir

    ir = parse_ir("hosts during all_time limit 10")
    ok.ir = ir
    bad = Case(
        id="bad",
        principal="host_viewer",
        ir=ir,
        sql="select count(r.host_id) as value from reservations r limit 10",
    )
    assert [w.check for w in checker.check(ok).witnesses] == []
    assert [w.check for w in checker.check(bad).witnesses] == ["metric_aggregate_mismatch"]


def test_expression_and_token_dimensions() -> None:
    f = facts_of(RENTALS)
    assert ("month", "reservations", "created_at") in f["dimension_column"]
    assert ("month", "DATE_TRUNC('MONTH', reservations.created_at)") in f["dimension_expression"]
    assert ("country", "query_token.listing__country_latest") in f["dimension_expression"]
    assert not any(d == "country" for d, *_ in f["dimension_column"])  # a token reads no table
    a = facts_of(ANALYTICS)
    assert {("day", "clicks", "clicked_at"), ("day", "workspaces", "timezone")} <= a[
        "dimension_column"
    ]


def test_published_defaults() -> None:
    d = load_domain(RENTALS)
    assert d.policy.roles["viewer"].aggregate_only is True  # not given: the published true
    assert d.policy.metrics["reservations"].cost == 10 and d.policy.dimensions["country"].cost == 1
    f = facts_of(RENTALS)
    assert ("viewer",) in f["role_aggregate_only"] and ("ops",) not in f["role_aggregate_only"]
    assert ("4821",) in {(t,) for _p, t in f["principal_tenant"]}  # quoted numeric tenant id


# ---- time ranges ----


def test_published_calendar_bounds_are_compat_exact() -> None:
    f = facts_of(RENTALS)  # no as_of: the published calendar
    bounds = {r: (s, e) for r, s, e in f["time_range_bounds"]}
    assert bounds["last_month"] == ("2026-05-01", "2026-06-01")
    assert bounds["last_fiscal_month"] == ("2026-04-27", "2026-05-25")
    assert bounds["quarter_to_date"] == ("2026-04-01", "2026-06-24")
    assert bounds["last_7_days"] == ("2026-06-17", "2026-06-24")
    assert ("last_7_days", "America/Los_Angeles") in f["time_range_timezone"]
    assert ("all_time",) in f["time_range_unbounded"] and "all_time" not in bounds
    assert ("all_time",) in f["time_range"]


def test_as_of_keeps_our_single_anchor_calendar() -> None:
    f = facts_of(Path("domains/support_saas"))  # as_of: 2026-06-01 set explicitly
    bounds = {r: (s, e) for r, s, e in f["time_range_bounds"]}
    assert bounds["quarter_to_date"] == ("2026-04-01", "2026-06-01")
    assert "time_range_timezone" not in f


def test_all_time_query_needs_no_time_predicate() -> None:
    checker = Checker.open(FIXTURES / "shop" / "domain")
    from policystrata.ir import parse_ir

    case = Case(
        id="c",
        principal="shop_analyst",
        ir=parse_ir("order_count during all_time limit 5"),
        sql="select count(o.id) as value from orders o limit 5",
    )
    assert [w.check for w in checker.check(case).witnesses] == []


dates = st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2098, 12, 31))


@settings(max_examples=200, deadline=None)
@given(as_of=dates, days=st.integers(min_value=0, max_value=120))
def test_calendar_invariants(as_of: dt.date, days: int) -> None:
    to_date = as_of + dt.timedelta(days=days)
    r = {
        k: (dt.date.fromisoformat(s), dt.date.fromisoformat(e), c)
        for k, (s, e, c) in default_time_ranges(as_of, to_date).items()
    }
    s, e, _ = r["last_month"]
    assert s.day == 1 and e == as_of.replace(day=1) and (e - s).days in (28, 29, 30, 31)
    s, e, cal = r["last_fiscal_month"]
    assert cal == "fiscal" and s.weekday() == 0 and e.weekday() == 0 and e <= as_of
    assert (e - s).days in (28, 35)
    s, e, _ = r["quarter_to_date"]
    assert e == to_date and s.day == 1 and s.month in (1, 4, 7, 10) and s <= to_date
    s, e, _ = r["last_7_days"]
    assert (e - s).days == 7 and e == to_date
    s, e, _ = r["fiscal_ytd"]
    assert e == to_date and s.weekday() == 0 and s.month == 1 and s.day <= 7 and s <= to_date
    # deterministic: the same dates give the same bounds
    assert default_time_ranges(as_of, to_date) == default_time_ranges(as_of, to_date)


def test_published_anchor_dates() -> None:
    assert (dt.date(2026, 6, 1), dt.date(2026, 6, 24)) == (PUBLISHED_AS_OF, PUBLISHED_TO_DATE)


# ---- hypothesis: shapes of metric expressions ----

idents = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: (
        s
        not in {
            "select",
            "from",
            "where",
            "and",
            "or",
            "not",
            "null",
            "case",
            "when",
            "then",
            "else",
            "end",
            "as",
            "in",
            "is",
            "by",
            "on",
            "filter",
            "distinct",
            "true",
            "false",
            "all",
            "any",
            "some",
            "between",
            "like",
            "limit",
            "offset",
            "group",
            "order",
            "having",
            "cast",
            "div",
            "mod",
            "over",
            "within",
            "union",
            "except",
            "intersect",
            "exists",
            "interval",
            "with",
            "asc",
            "desc",
            "nulls",
            "first",
            "last",
            "to",
            "at",
            "date",
            "time",
            "timestamp",
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "row",
            "rows",
            "into",
            "collate",
            "escape",
            "similar",
            "ilike",
            "rlike",
            "glob",
            "array",
            "map",
            "struct",
            "natural",
            "join",
            "left",
            "right",
            "full",
            "inner",
            "outer",
            "cross",
            "using",
            "if",
            "values",
            "window",
            "range",
            "unbounded",
            "preceding",
            "following",
            "current",
            "partition",
            "qualify",
            "sample",
            "tablesample",
            "pivot",
            "unpivot",
            "lateral",
            "references",
            "default",
            "key",
            "primary",
            "foreign",
            "unique",
            "check",
            "constraint",
            "set",
            "use",
            "show",
            "describe",
            "explain",
            "copy",
            "top",
            "fetch",
            "next",
            "only",
            "percent",
            "ties",
            "returning",
            "leading",
            "trailing",
            "both",
            "overlaps",
            "for",
        }
    )
)
columns = st.builds(lambda t, c: f"{t}.{c}", idents, idents) | idents
aggregates = st.sampled_from(
    [
        "sum({c})",
        "avg({c})",
        "min({c})",
        "max({c})",
        "count({c})",
        "count(distinct {c})",
        "COUNT(DISTINCT {c})",
        "count_distinct({c})",
        "average({c})",
        "median({c})",
        "percentile({c})",
        "uniqExact({c})",
        "uniq({c})",
        "SUM(CASE WHEN {c} IS NOT NULL THEN 1 ELSE 0 END)",
        "countIf({c} = 'x')",
        "uniqExactIf({c}, {c} = 'y')",
        "SUM(1)",
        "count()",
    ]
)


@st.composite
def metric_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """An expression over 1-3 aggregates (any published form) with arithmetic, NULLIF ratios,
    a constant factor, a leading SELECT / comma and folded lines; and the columns it names."""
    cols = draw(st.lists(columns, min_size=1, max_size=3))
    templates = [draw(aggregates) for _ in cols]
    parts = [t.format(c=c) for t, c in zip(templates, cols, strict=True)]
    named = [c for t, c in zip(templates, cols, strict=True) if "{c}" in t]
    ops = draw(
        st.lists(
            st.sampled_from([" + ", " - ", " * ", " / "]),
            min_size=len(parts) - 1,
            max_size=len(parts) - 1,
        )
    )
    text = parts[0]
    for op, p in zip(ops, parts[1:], strict=True):
        text += op + (f"NULLIF({p}, 0)" if op == " / " else p)
    if draw(st.booleans()):
        text = f"({text}) * {draw(st.sampled_from(['1.0', '0.05', '2']))}"
    lead = draw(st.sampled_from(["", "SELECT ", ", ", "  "]))
    fold = draw(st.sampled_from([" ", "\n", "\n  "]))
    return lead + text.replace(" + ", fold + "+ "), named


@settings(max_examples=300, deadline=None)
@given(metric_texts())
def test_metric_forms_are_understood_canonical_and_stable(generated: tuple[str, list[str]]) -> None:
    text, cols = generated
    info = read_metric(text)
    assert info.understood, (text, info.problem)
    assert info.sql is not None and info.aggregates >= 1
    again = read_metric(info.sql)  # the canonical SQL is a fixed point
    assert again.sql == info.sql and set(again.columns) == set(info.columns)
    seen = {f"{t}.{c}" if t else c for t, c in info.columns}
    assert set(cols) <= seen, (text, seen)
    # pseudo-functions and ClickHouse aggregates never survive into the canonical SQL
    low = info.sql.lower()
    for name in ("count_distinct(", "average(", "uniqexact(", "countif(", "uniqexactif("):
        assert name not in low


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_read_or_reported_never_raised(text: str) -> None:
    info = read_metric(text)
    assert info.understood == (info.problem is None)
    if not info.understood:
        assert info.sql is None and info.problem
    dim = read_dimension(text)
    assert dim.understood == (dim.problem is None)


def test_cli_check_on_a_published_policy_domain_is_never_exit_2() -> None:
    result = run(
        "check",
        "--domain-path",
        str(RENTALS),
        "--principal",
        "host_viewer",
        "--ir",
        "value_per_view by country during all_time limit 10",
        "--format",
        "json",
    )
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["counts"]["error"] == 0


def test_a_metric_whose_expression_is_not_understood_is_not_reported_clean(tmp_path: Path) -> None:
    """The aggregate check cannot judge such a metric: the scan says so (skipped, with why),
    it never reports it as passed."""
    import shutil
    import xml.etree.ElementTree as ET

    d = tmp_path / "dom"
    shutil.copytree(RENTALS, d)
    policy = d / "policy.yaml"
    policy.write_text(
        policy.read_text().replace(
            "expression: average(nightly_rate)", "expression: \"{{ metric('nightly_rate') }}\""
        )
    )
    rec = {
        "id": "rate",
        "principal": "ops_lead",
        "semantic_ir": "avg_nightly_rate during all_time limit 10",
        "sql": "select avg(r.nightly_rate) as value from reservations r limit 10",
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(rec) + "\n")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\ndomain_path: dom\nsql_traces: {files: [t.jsonl]}\n")
    result = run("scan", "--config", str(cfg), "--db", "none")
    assert result.exit_code == 0, result.output
    junit = ET.parse(tmp_path / "scan-out" / "junit.xml").getroot()
    [case] = [
        tc
        for tc in junit.iter("testcase")
        if tc.get("name") == "compiler.metric_aggregate_mismatch"
    ]
    skipped = case.find("skipped")
    assert skipped is not None
    assert "expression of metric avg_nightly_rate is not understood" in (
        skipped.get("message", "") + (skipped.text or "")
    )
