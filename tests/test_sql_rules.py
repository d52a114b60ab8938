"""Compiler rules over lowered SQL: issue #3's acceptance verdicts, through the check pipeline
(shipped rules), on the denormalised shape where every tenant-owned table has its own tenant_id
(tests/fixtures/domains/denormalized: the pre-1.x support_saas)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.ir import parse_ir
from policystrata.model import load_domain

DENORMALIZED = Path(__file__).parent / "fixtures" / "domains" / "denormalized"


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(load_domain(DENORMALIZED))


def compiler_faults(checker: Checker, sql: str, ir: str | None = None, **kw: object) -> set[str]:
    case = Case(
        id="c",
        principal=str(kw.pop("principal", "acme_analyst")),
        sql=sql,
        ir=parse_ir(ir) if ir else None,
        **kw,  # type: ignore[arg-type]
    )
    facts = checker.case_facts(case)
    result = checker.engine.evaluate(facts)
    return {
        f"{check}:{key}"
        for (_c, surface, _cls, check, key) in result.atoms("layer_fault")
        if surface == "compiler"
    }


TC = "ticket_count during last_month limit 100"
WINDOW = "t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01'"


def test_tenant_filter_only_in_cte_is_clean(checker: Checker) -> None:
    sql = (
        "with acme_tickets as (select t.id, t.opened_at from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW}) "
        "select count(distinct a.id) as value from acme_tickets a limit 100"
    )
    assert compiler_faults(checker, sql, TC) == set()


def test_fk_join_to_scoped_parent_is_clean(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) as value from accounts a join support_tickets t "
        f"on t.account_id = a.id where a.tenant_id in ('acme') and {WINDOW} limit 100"
    )
    assert compiler_faults(checker, sql, TC) == set()


def test_union_second_branch_other_tenant_is_violation(checker: Checker) -> None:
    sql = (
        "select a.id from accounts a where a.tenant_id = 'acme' "
        "union all select b.id from accounts b where b.tenant_id = 'beta' limit 100"
    )
    faults = compiler_faults(checker, sql)
    assert "tenant_scope_missing:accounts" in faults
    assert "cross_tenant_literal:accounts" in faults


def test_uncorrelated_exists_does_not_scope(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) from support_tickets t where exists "
        f"(select 1 from support_tickets x where x.tenant_id = 'acme') and {WINDOW} limit 100"
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, sql, TC)


def test_bound_parameter_is_scoped(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) from accounts join support_tickets t "
        f"on t.account_id = accounts.id where accounts.tenant_id = $1 and {WINDOW} limit 100"
    )
    assert compiler_faults(checker, sql, TC, tenant_ids=("acme",)) == set()
    # the same SQL bound to a tenant the principal does not hold is not scoped
    assert "tenant_scope_missing:accounts" in compiler_faults(
        checker, sql, TC, params={"$1": "beta"}
    )


def test_tenant_filter_under_or_is_not_a_guarantee(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) from support_tickets t "
        f"where (t.tenant_id = 'acme' or 1 = 1) and {WINDOW} limit 100"
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, sql, TC)


def test_legacy_tenant_column_is_wrong_column(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) from accounts a join support_tickets t "
        f"on t.account_id = a.id where a.legacy_tenant_id = 'acme' and {WINDOW} limit 100"
    )
    faults = compiler_faults(checker, sql, TC)
    assert "wrong_tenant_column:accounts" in faults


def test_sum_joined_through_tickets_is_fanout(checker: Checker) -> None:
    sql = (
        "select sum(i.net_amount_cents) from invoices i join accounts a on a.id = i.account_id "
        "join support_tickets t on t.account_id = a.id where a.tenant_id = 'acme' "
        "and i.invoice_date >= '2026-05-01' and i.invoice_date < '2026-06-01' limit 100"
    )
    faults = compiler_faults(checker, sql, "net_revenue during last_month limit 100")
    assert "fanout_join:invoices" in faults
    assert "metric_aggregate_mismatch:net_revenue" not in faults


def test_non_distinct_count_over_fanout_is_violation(checker: Checker) -> None:
    sql = (
        "select count(t.id) from support_tickets t join ticket_events e on e.ticket_id = t.id "
        f"where t.tenant_id = 'acme' and e.tenant_id = 'acme' and {WINDOW} limit 100"
    )
    faults = compiler_faults(checker, sql, TC)
    assert "metric_aggregate_mismatch:ticket_count" in faults
    assert "fanout_join:support_tickets" in faults


def test_set_config_in_select_list_is_rejected(checker: Checker) -> None:
    sql = "select set_config('app.tenant_id', 'beta', true), count(*) from support_tickets"
    faults = compiler_faults(checker, sql, TC)
    assert any(f.startswith("not_read_only:") for f in faults)


def test_gross_for_net_and_time_drift(checker: Checker) -> None:
    sql = (
        "select sum(i.gross_amount_cents) from invoices i where i.tenant_id = 'acme' "
        "and i.invoice_date >= '2026-05-01' and i.invoice_date < '2026-05-25' limit 100"
    )
    faults = compiler_faults(checker, sql, "net_revenue during last_month limit 100")
    assert "metric_aggregate_mismatch:net_revenue" in faults
    assert "time_bounds_mismatch:last_month" in faults


def test_row_budget(checker: Checker) -> None:
    ir = "ticket_count by severity during last_month limit 100"
    base = (
        "select t.severity, count(distinct t.id) from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW} group by t.severity"
    )
    assert "row_budget_exceeded:5000" in compiler_faults(checker, base + " limit 5000", ir)
    assert "row_budget_missing:analyst" in compiler_faults(checker, base, ir)
    # a bound parameter within the budget keeps it; an unbound one is "bound unknown"
    assert compiler_faults(checker, base + " limit $1", ir, params={"$1": 100}) == set()
    assert compiler_faults(checker, base + " limit $1", ir) == {"row_budget_unknown:$1"}


def test_provably_bounded_results_keep_the_row_budget(checker: Checker) -> None:
    scalar = (
        "select count(distinct t.id) from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW}"
    )
    # a scalar aggregate is one row: no LIMIT needed, and LIMIT 5000 cannot return more
    assert compiler_faults(checker, scalar, TC) == set()
    assert compiler_faults(checker, scalar + " limit 5000", TC) == set()
    # grouping only by columns an equality fixes is one group
    ir = "ticket_count by severity during last_month where severity = 'low' limit 100"
    one_group = (
        "select t.severity, count(distinct t.id) from support_tickets t "
        f"where t.tenant_id = 'acme' and t.severity = 'low' and {WINDOW} group by t.severity"
    )
    assert compiler_faults(checker, one_group, ir) == set()


def test_sensitive_column_through_subquery_for_analyst(checker: Checker) -> None:
    sql = (
        "select y.m from (select a.customer_email as m from accounts a "
        "where a.tenant_id = 'acme') y limit 100"
    )
    assert "sensitive_column_output:customer_email" in compiler_faults(checker, sql)
    assert "sensitive_column_output:customer_email" not in compiler_faults(
        checker, sql, principal="acme_finance_admin"
    )


def test_absent_time_filter_is_drift_and_so_is_a_relative_one(checker: Checker) -> None:
    sql = "select count(distinct t.id) from support_tickets t where t.tenant_id = 'acme' limit 100"
    assert compiler_faults(checker, sql, TC) == {"time_window_missing:last_month"}
    rel = sql.replace("limit", "and t.opened_at >= current_date - interval '30 days' limit")
    assert compiler_faults(checker, rel, TC) == {"time_bounds_mismatch:last_month"}
    # an unbounded range asks for no window
    assert compiler_faults(checker, sql, "ticket_count limit 100") == set()


# ---- audit: legitimate shapes must be clean, drifting ones flagged ---------------------------


def test_unquoted_upper_case_names_fold_like_postgres(checker: Checker) -> None:
    sql = (
        "SELECT COUNT(DISTINCT ST.ID) AS VALUE FROM SUPPORT_TICKETS ST WHERE ST.TENANT_ID = 'acme' "
        "AND ST.OPENED_AT >= '2026-05-01' AND ST.OPENED_AT < '2026-06-01' LIMIT 100"
    )
    assert compiler_faults(checker, sql, TC) == set()
    # a quoted alias keeps its case: "St" is not st, so the filter confines nothing
    quoted = (
        'select count(distinct "St".id) from support_tickets "St" where st.tenant_id = \'acme\' '
        "and \"St\".opened_at >= '2026-05-01' and \"St\".opened_at < '2026-06-01' limit 100"
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, quoted, TC)


RC = "ticket_count by region during last_month limit 100"
PLAN = "ticket_count by plan during last_month limit 100"
AVG = "average_resolution_hours during last_month limit 100"
NR_REGION = "net_revenue by region during last_month limit 100"
NR_PLAN = "net_revenue by plan during last_month limit 100"
ST_WINDOW = "st.opened_at >= date '2026-05-01' and st.opened_at < date '2026-06-01'"
ACME_ACCOUNTS = "select id, region from accounts where tenant_id = 'acme'"


@pytest.mark.parametrize(
    "sql",
    [
        # the scoped parent in a CTE, joined from either side
        f"with t as ({ACME_ACCOUNTS}) select count(distinct st.id) as value, t.region "
        f"from support_tickets st join t on st.account_id = t.id where {ST_WINDOW} "
        "group by t.region limit 100",
        f"with t as ({ACME_ACCOUNTS}) select count(distinct st.id) as value, t.region "
        f"from t join support_tickets st on st.account_id = t.id where {ST_WINDOW} "
        "group by t.region limit 100",
        # a derived table, a CTE over a CTE, a renamed key joined with USING
        f"select count(distinct st.id) as value, x.region from support_tickets st "
        f"join ({ACME_ACCOUNTS}) x on st.account_id = x.id where {ST_WINDOW} "
        "group by x.region limit 100",
        f"with a as ({ACME_ACCOUNTS}), b as (select id, region from a) "
        "select count(distinct st.id) as value, b.region from support_tickets st "
        f"join b on st.account_id = b.id where {ST_WINDOW} group by b.region limit 100",
        "with a as (select id as account_id, region from accounts where tenant_id = 'acme') "
        "select count(distinct st.id) as value, a.region from support_tickets st "
        f"join a using (account_id) where {ST_WINDOW} group by a.region limit 100",
        # comma join with the equality in WHERE
        "select count(distinct st.id) as value, a.region from support_tickets st, accounts a "
        f"where st.account_id = a.id and a.tenant_id = 'acme' and {ST_WINDOW} "
        "group by a.region limit 100",
    ],
)
def test_join_to_scoped_parent_in_cte_or_derived_table_is_clean(checker: Checker, sql: str) -> None:
    assert compiler_faults(checker, sql, RC) == set()


def test_metric_table_in_cte_keeps_join_grain_checks(checker: Checker) -> None:
    cte = "with tk as (select * from support_tickets where tenant_id = 'acme') "
    window = "tk.opened_at >= date '2026-05-01' and tk.opened_at < date '2026-06-01'"
    fk_parent = (
        f"{cte}select a.region as region, count(distinct tk.id) as value from tk "
        f"join accounts a on a.id = tk.account_id where a.tenant_id = 'acme' and {window} "
        "group by a.region limit 100"
    )
    assert compiler_faults(checker, fk_parent, RC) == set()
    not_parent = (
        f"{cte}select s.plan as plan, count(distinct tk.id) as value from tk "
        f"join subscriptions s on s.account_id = tk.account_id where s.tenant_id = 'acme' "
        f"and {window} group by s.plan limit 100"
    )
    faults = compiler_faults(
        checker, not_parent, "ticket_count by plan during last_month limit 100"
    )
    assert "inner_join_drops_rows:support_tickets" in faults
    events = (
        f"{cte}select avg(tk.resolution_hours) as value from tk join ticket_events e "
        f"on e.ticket_id = tk.id where e.tenant_id = 'acme' and {window} limit 100"
    )
    faults = compiler_faults(
        checker, events, "average_resolution_hours during last_month limit 100"
    )
    assert "fanout_join:support_tickets" in faults


NR = "net_revenue during last_month limit 100"
INV_WINDOW = "i.invoice_date >= '2026-05-01' and i.invoice_date < '2026-06-01'"


@pytest.mark.parametrize(
    "sql",
    [
        # one-to-many derived table
        "select sum(i.net_amount_cents) as value from invoices i join (select account_id from "
        "support_tickets where tenant_id = 'acme') t on t.account_id = i.account_id "
        f"where i.tenant_id = 'acme' and {INV_WINDOW} limit 100",
        # LEFT JOIN of a derived table that is not one row per key
        "select s.plan, sum(i.net_amount_cents) as value from invoices i left join "
        "(select account_id, plan from subscriptions where tenant_id = 'acme') s "
        f"on s.account_id = i.account_id where i.tenant_id = 'acme' and {INV_WINDOW} "
        "group by s.plan limit 100",
        # the join inside a CTE, the aggregate outside it
        "with x as (select i.net_amount_cents from invoices i join support_tickets t "
        f"on t.account_id = i.account_id where i.tenant_id = 'acme' and t.tenant_id = 'acme' "
        f"and {INV_WINDOW}) select sum(x.net_amount_cents) as value from x limit 100",
        # a set-returning table function
        "select sum(i.net_amount_cents) as value from invoices i cross join "
        f"generate_series(1, 3) g where i.tenant_id = 'acme' and {INV_WINDOW} limit 100",
    ],
)
def test_fanout_through_derived_tables_ctes_and_functions(checker: Checker, sql: str) -> None:
    assert "fanout_join:invoices" in compiler_faults(checker, sql, NR)


def test_one_row_per_key_sources_do_not_fan_out(checker: Checker) -> None:
    preaggregated = (
        "with inv as (select account_id, sum(net_amount_cents) as net from invoices "
        "where tenant_id = 'acme' and invoice_date >= '2026-05-01' "
        "and invoice_date < '2026-06-01' group by account_id) "
        "select a.region, sum(inv.net) as value from accounts a left join inv "
        "on inv.account_id = a.id where a.tenant_id = 'acme' group by a.region limit 100"
    )
    assert compiler_faults(checker, preaggregated, NR_REGION) == set()
    latest = (
        "select l.plan as plan, sum(i.net_amount_cents) as value from invoices i left join "
        "(select distinct on (s.account_id) s.account_id, s.plan from subscriptions s "
        "where s.tenant_id = 'acme' order by s.account_id, s.started_on desc) l "
        f"on l.account_id = i.account_id where i.tenant_id = 'acme' and {INV_WINDOW} "
        "group by l.plan limit 100"
    )
    assert compiler_faults(checker, latest, NR_PLAN) == set()


def test_outer_join_of_child_to_scoped_parent_is_clean(checker: Checker) -> None:
    # the child's rows appear only where they match the parent's acme rows
    parent_first = (
        "select a.region, count(t.id) from accounts a left join support_tickets t "
        "on t.account_id = a.id where a.tenant_id = 'acme' group by a.region limit 100"
    )
    assert compiler_faults(checker, parent_first) == set()
    child_first = (
        "select a.region, count(t.id) from support_tickets t left join accounts a "
        "on a.id = t.account_id where t.tenant_id = 'acme' group by a.region limit 100"
    )
    assert compiler_faults(checker, child_first) == set()
    # the preserved side is not filtered by a predicate in the ON clause
    on_only = (
        "select a.region, count(t.id) from support_tickets t left join accounts a "
        "on a.id = t.account_id and a.tenant_id = 'acme' group by a.region limit 100"
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, on_only)


def test_inner_join_along_nullable_foreign_key_drops_rows(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) as value from support_tickets t join agents g "
        f"on g.id = t.agent_id where t.tenant_id = 'acme' and {WINDOW} limit 100"
    )
    assert "inner_join_drops_rows:support_tickets" in compiler_faults(checker, sql, TC)
    assert compiler_faults(checker, sql.replace(" join agents", " left join agents"), TC) == set()


TICKETS = "select count(distinct t.id) as value from support_tickets t where "


@pytest.mark.parametrize(
    "cond",
    [
        "t.account_id in (select id from accounts where tenant_id = 'acme')",
        "t.tenant_id = (select x.id from tenants x where x.id = 'acme')",
        "exists (select 1 from accounts a where a.id = t.account_id and a.tenant_id = 'acme')",
        "exists (select 1 from accounts a where t.account_id = a.id and a.tenant_id = 'acme')",
    ],
)
def test_semi_join_to_scoped_rows_confines(checker: Checker, cond: str) -> None:
    assert compiler_faults(checker, f"{TICKETS}{cond} and {WINDOW} limit 100", TC) == set()


@pytest.mark.parametrize(
    "cond",
    [
        "t.account_id not in (select id from accounts where tenant_id = 'acme')",
        "not exists (select 1 from accounts a where a.id = t.account_id and a.tenant_id = 'acme')",
        "(t.account_id in (select id from accounts where tenant_id = 'acme') or t.escalated)",
        "t.account_id in (select account_id from support_tickets where severity = 'high')",
        "t.severity in (select a.region from accounts a where a.tenant_id = 'acme')",
    ],
)
def test_semi_join_that_does_not_confine(checker: Checker, cond: str) -> None:
    faults = compiler_faults(checker, f"{TICKETS}{cond} and {WINDOW} limit 100", TC)
    assert "tenant_scope_missing:support_tickets" in faults


def test_filter_on_a_cte_column_confines_when_every_reader_filters(checker: Checker) -> None:
    cte = (
        "with tk as (select id, tenant_id, account_id from support_tickets "
        "where opened_at >= '2026-05-01' and opened_at < '2026-06-01') "
    )
    outer = (
        f"{cte}select count(distinct tk.id) as value from tk where tk.tenant_id = 'acme' limit 100"
    )
    assert compiler_faults(checker, outer, TC) == set()
    joined = (
        f"{cte}select a.region, count(distinct tk.id) as value from tk join accounts a "
        "on a.id = tk.account_id where a.tenant_id = 'acme' group by a.region limit 100"
    )
    assert compiler_faults(checker, joined, RC) == set()
    derived = (
        "select count(distinct x.id) as value from (select * from support_tickets "
        "where opened_at >= '2026-05-01' and opened_at < '2026-06-01') x "
        "where x.tenant_id in ('acme') limit 100"
    )
    assert compiler_faults(checker, derived, TC) == set()
    twice = (
        f"{cte}select id from tk where tk.tenant_id = 'acme' union all select id from tk limit 100"
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, twice)
    other = outer.replace("= 'acme'", "in ('acme', 'beta')")
    faults = compiler_faults(checker, other, TC)
    assert "tenant_scope_missing:support_tickets" in faults
    assert "cross_tenant_literal:support_tickets" in faults


ACME_STAR = "with t as (select * from accounts where tenant_id = 'acme') "


@pytest.mark.parametrize(
    "sql",
    [
        # the reported defect: only region leaves the CTE's consumer
        f"{ACME_STAR}select count(distinct st.id) as value, t.region from t "
        f"join support_tickets st on st.account_id = t.id where {ST_WINDOW} "
        "group by t.region limit 100",
        f"{ACME_STAR}select t.region from t limit 100",
        "select x.region from (select * from accounts where tenant_id = 'acme') x limit 100",
        "with t as (select a.* from accounts a where a.tenant_id = 'acme') "
        "select region from t limit 100",
        f"{ACME_STAR}, u as (select * from t) select region from u limit 100",
        "with t as (select * from accounts where tenant_id = 'acme' union all "
        "select * from accounts where tenant_id = 'acme') select region from t limit 100",
        f"{ACME_STAR}select count(*) from t limit 100",
        # an explicitly listed column the consumer never uses is not read either
        "with t as (select region, customer_email from accounts where tenant_id = 'acme') "
        "select region from t limit 100",
    ],
)
def test_star_in_cte_reads_only_what_the_consumer_uses(checker: Checker, sql: str) -> None:
    faults = compiler_faults(checker, sql, RC if "support_tickets" in sql else None)
    assert not {f for f in faults if f.startswith("sensitive_column")}, faults


@pytest.mark.parametrize(
    ("sql", "check"),
    [
        (f"{ACME_STAR}select * from t limit 100", "sensitive_column_output"),
        (f"{ACME_STAR}select t.* from t limit 100", "sensitive_column_output"),
        (
            f"{ACME_STAR}select region from t where customer_email like '%x' limit 100",
            "sensitive_column_read",
        ),
        (
            f"{ACME_STAR}select region from t order by t.customer_email limit 100",
            "sensitive_column_read",
        ),
        (
            "with t as (select region from accounts where tenant_id = 'acme' "
            "and customer_email like '%x') select region from t limit 100",
            "sensitive_column_read",
        ),
        # DISTINCT compares whole rows: the email decides how many regions come out
        (
            "with t as (select distinct region, customer_email from accounts "
            "where tenant_id = 'acme') select region from t limit 100",
            "sensitive_column_read",
        ),
        (
            "select row_to_json(a) from accounts a where a.tenant_id = 'acme' limit 100",
            "sensitive_column_output",
        ),
        (
            "select a from accounts a where a.tenant_id = 'acme' limit 100",
            "sensitive_column_output",
        ),
        (
            "select to_jsonb(a.*) from accounts a where a.tenant_id = 'acme' limit 100",
            "sensitive_column_output",
        ),
        (
            "select string_agg(lower(a.customer_email), ',') from accounts a "
            "where a.tenant_id = 'acme' limit 100",
            "sensitive_column_output",
        ),
    ],
)
def test_sensitive_column_used_or_returned_through_ctes_and_rows(
    checker: Checker, sql: str, check: str
) -> None:
    assert f"{check}:customer_email" in compiler_faults(checker, sql)


def test_whole_row_count_and_qualified_star_read_only_their_source(checker: Checker) -> None:
    count_rows = "select count(a.*) from accounts a where a.tenant_id = 'acme' limit 100"
    assert compiler_faults(checker, count_rows) == set()
    # t.* returns the tickets' columns only, not the joined accounts' email
    tickets = (
        "select t.*, a.region from support_tickets t join accounts a on a.id = t.account_id "
        "where t.tenant_id = 'acme' limit 100"
    )
    assert compiler_faults(checker, tickets) == set()


def test_parenthesized_statement_is_the_select(checker: Checker) -> None:
    inner = (
        "select count(distinct t.id) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW}"
    )
    assert compiler_faults(checker, f"({inner} limit 100)", TC) == set()
    assert compiler_faults(checker, f"(({inner})) limit 100", TC) == set()
    grouped = (
        "select t.severity, count(distinct t.id) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW} group by t.severity"
    )
    by_severity = "ticket_count by severity during last_month limit 100"
    faults = compiler_faults(checker, f"({grouped}) limit 5000", by_severity)
    assert "row_budget_exceeded:5000" in faults


@pytest.mark.parametrize(
    "cond",
    [
        "t.tenant_id = nullif(current_setting('app.tenant_id', true), '')",
        "(t.tenant_id = 'acme' or t.tenant_id = 'acme')",
        "(t.tenant_id in ('acme') or t.tenant_id = current_setting('app.tenant_id'))",
    ],
)
def test_equivalent_tenant_filters_are_clean(checker: Checker, cond: str) -> None:
    sql = f"select count(distinct t.id) as value from support_tickets t where {cond} and {WINDOW}"
    assert compiler_faults(checker, sql + " limit 100", TC) == set()


def test_or_of_tenants_is_an_in_list(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) as value from support_tickets t where "
        f"(t.tenant_id = 'acme' or t.tenant_id = 'beta') and {WINDOW} limit 100"
    )
    faults = compiler_faults(checker, sql, TC)
    assert {
        "tenant_scope_missing:support_tickets",
        "cross_tenant_literal:support_tickets",
    } <= faults
    other = sql.replace("t.tenant_id = 'beta'", "t.severity = 'high'")
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, other, TC)


def test_lateral_subquery_correlated_with_a_scoped_alias(checker: Checker) -> None:
    sql = (
        "select a.region, x.n from accounts a cross join lateral (select count(*) as n "
        "from support_tickets t where t.account_id = a.id) x where a.tenant_id = 'acme' limit 100"
    )
    assert compiler_faults(checker, sql) == set()
    unscoped = sql.replace(" where a.tenant_id = 'acme'", "")
    faults = compiler_faults(checker, unscoped)
    assert {"tenant_scope_missing:accounts", "tenant_scope_missing:support_tickets"} <= faults


def test_recursive_cte_is_analysed(checker: Checker) -> None:
    sql = (
        "with recursive r as (select id, 1 as n from accounts where tenant_id = 'acme' "
        "union all select id, n + 1 from r where n < 3) select id from r limit 100"
    )
    assert compiler_faults(checker, sql) == set()
    assert "tenant_scope_missing:accounts" in compiler_faults(
        checker, sql.replace(" where tenant_id = 'acme'", "")
    )


ESC = "escalated_tickets during last_month limit 100"


@pytest.mark.parametrize(
    "sql",
    [
        "select count(distinct t.id) filter (where t.escalated) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW} limit 100",
        "select count(distinct t.id) filter (where t.escalated = true) as value "
        f"from support_tickets t where t.tenant_id = 'acme' and {WINDOW} limit 100",
        "select count(distinct t.id) filter (where t.escalated is true) as value "
        f"from support_tickets t where t.tenant_id = 'acme' and {WINDOW} limit 100",
        # the filter as the scope's WHERE, or inside the CTE the aggregate reads
        "select count(distinct t.id) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and t.escalated and {WINDOW} limit 100",
        "with e as (select * from support_tickets where escalated and tenant_id = 'acme') "
        "select count(distinct e.id) as value from e where e.opened_at >= '2026-05-01' "
        "and e.opened_at < '2026-06-01' limit 100",
    ],
)
def test_metric_filter_written_any_equivalent_way_is_clean(checker: Checker, sql: str) -> None:
    assert compiler_faults(checker, sql, ESC) == set()


@pytest.mark.parametrize(
    "agg",
    [
        "count(distinct t.id)",  # the FILTER dropped: all tickets counted as escalated
        "count(distinct t.id) filter (where not t.escalated)",
        "count(distinct t.id) filter (where t.severity = 'high')",
        "count(distinct t.id) filter (where t.escalated and t.severity = 'high')",
        "count(distinct t.id) filter (where t.escalated or t.severity = 'high')",
    ],
)
def test_metric_filter_dropped_or_changed_is_drift(checker: Checker, agg: str) -> None:
    sql = f"select {agg} as value from support_tickets t where t.tenant_id = 'acme' and {WINDOW}"
    assert "metric_aggregate_mismatch:escalated_tickets" in compiler_faults(
        checker, sql + " limit 100", ESC
    )


def test_filter_on_an_unfiltered_metric_is_drift(checker: Checker) -> None:
    sql = (
        "select count(distinct t.id) filter (where t.escalated) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW} limit 100"
    )
    assert "metric_aggregate_mismatch:ticket_count" in compiler_faults(checker, sql, TC)


@pytest.mark.parametrize(
    "agg", ["count(*)", "count(t.id)", "count(1)", "sum(case when t.id is not null then 1 end)"]
)
def test_count_distinct_metric_written_without_distinct_is_drift(
    checker: Checker, agg: str
) -> None:
    # Decision: DISTINCT is part of the declared expression. count(t.id) equals it while t is
    # not joined to anything that repeats its rows, but a compiler that dropped it stops being
    # right as soon as a join is added (seeded fault compiler_removes_distinct).
    sql = f"select {agg} as value from support_tickets t where t.tenant_id = 'acme' and {WINDOW}"
    assert "metric_aggregate_mismatch:ticket_count" in compiler_faults(
        checker, sql + " limit 100", TC
    )


def tickets_where(cond: str) -> str:
    return (
        "select count(distinct t.id) as value from support_tickets t "
        f"where t.tenant_id = 'acme' and {cond} limit 100"
    )


@pytest.mark.parametrize(
    "cond",
    [
        "t.opened_at >= date '2026-05-01' and t.opened_at < date '2026-05-01' + interval '1 month'",
        "t.opened_at >= make_date(2026, 5, 1) and t.opened_at <= date '2026-06-01' - 1",
        "t.opened_at between '2026-05-01'::date and '2026-06-01'::date - interval '1 day'",
        "t.opened_at >= timestamp '2026-05-01 00:00:00' and t.opened_at < '2026-06-01'",
        "date_trunc('month', t.opened_at) = date '2026-05-01'",
        "t.opened_at > '2026-04-30' and t.opened_at <= '2026-05-31'",
        # a looser extra bound next to the declared ones changes nothing
        "t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01' "
        "and t.opened_at >= '2026-01-01'",
        # another window bounds other rows (a correlated EXISTS), not the metric's
        "t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01' and exists (select 1 "
        "from support_tickets p where p.account_id = t.account_id and p.tenant_id = 'acme' "
        "and p.opened_at < '2026-04-01')",
    ],
)
def test_declared_range_written_any_equivalent_way_is_clean(checker: Checker, cond: str) -> None:
    assert compiler_faults(checker, tickets_where(cond), TC) == set()


@pytest.mark.parametrize(
    "sql",
    [
        tickets_where(
            "t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01' "
            "and t.opened_at >= '2026-05-02'"
        ),
        tickets_where("t.opened_at >= '2026-05-01' and t.opened_at <= '2026-06-01'"),
        tickets_where("t.opened_at > '2026-05-01' and t.opened_at < '2026-06-01'"),
        tickets_where(
            "t.opened_at >= date '2026-05-01' "
            "and t.opened_at < date '2026-05-01' + interval '30 days'"
        ),
        # the range on another date column while the metric's time column is not bounded
        "select count(distinct t.id) as value from support_tickets t join accounts a "
        "on a.id = t.account_id where t.tenant_id = 'acme' and a.created_on >= '2026-05-01' "
        "and a.created_on < '2026-06-01' limit 100",
    ],
)
def test_range_narrowed_or_misplaced_is_drift(checker: Checker, sql: str) -> None:
    assert "time_bounds_mismatch:last_month" in compiler_faults(checker, sql, TC)


def test_left_join_that_where_makes_inner_confines_both_sides(checker: Checker) -> None:
    sql = (
        "select a.region, count(distinct t.id) as value from support_tickets t left join "
        "accounts a on a.id = t.account_id where a.tenant_id = 'acme' and "
        f"{WINDOW} group by a.region limit 100"
    )
    assert compiler_faults(checker, sql, RC) == set()
    # IS NULL keeps the unmatched rows: still an outer join, tickets unconfined
    kept = sql.replace("a.tenant_id = 'acme'", "(a.tenant_id = 'acme' or a.id is null)")
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, kept, RC)


def test_filter_on_a_left_joined_dimension_is_a_filter_not_a_dropping_join(
    checker: Checker,
) -> None:
    # the reference compiler's shape for "net_revenue by plan where plan in (...)": the WHERE on
    # the LEFT JOINed one-row-per-account subscriptions removes unmatched rows on purpose
    sql = (
        "with scoped_invoices as (select * from invoices where tenant_id = 'acme' "
        "and invoice_date >= date '2026-05-01' and invoice_date < date '2026-06-01') "
        "select latest_subscriptions.plan as plan, sum(scoped_invoices.net_amount_cents) as value "
        "from scoped_invoices join accounts on accounts.id = scoped_invoices.account_id "
        "left join (select distinct on (subscriptions.account_id) subscriptions.account_id, "
        "subscriptions.plan from subscriptions where subscriptions.tenant_id = 'acme' "
        "order by subscriptions.account_id, subscriptions.started_on desc) as latest_subscriptions "
        "on latest_subscriptions.account_id = accounts.id where accounts.tenant_id = 'acme' "
        "and latest_subscriptions.plan in ('enterprise', 'pro') group by latest_subscriptions.plan "
        "limit 10"
    )
    ir = "net_revenue by plan during last_month where plan in ('enterprise', 'pro') limit 100"
    assert compiler_faults(checker, sql, ir) == set()
    # the same filter where the IR does not ask for it is drift
    assert compiler_faults(checker, sql, NR_PLAN) == {"filter_extra:plan"}


def trace_faults(checker: Checker, record: dict[str, object]) -> set[str]:
    import json

    from policystrata.traces import parse_trace_line

    case = parse_trace_line(json.dumps(record), "traces.jsonl", 1)
    assert isinstance(case, Case), case
    result = checker.engine.evaluate(checker.case_facts(case))
    return {
        f"{chk}:{key}" for (_c, s, _cl, chk, key) in result.atoms("layer_fault") if s == "compiler"
    }


@pytest.mark.parametrize(
    ("where", "params"),
    [
        ("t.tenant_id = $1", {"tenant_ids": ["acme"]}),
        ("t.tenant_id = :tenant", {"params": {"tenant": "acme"}}),
        ("t.tenant_id = %(tenant)s", {"params": {"tenant": "acme"}}),
        # anonymous placeholders are bound by position: the LIMIT's comes last
        ("t.tenant_id = %s", {"params": ["acme", 100]}),
        ("t.tenant_id = ?", {"params": ["acme", 100]}),
    ],
)
def test_trace_parameters_bind_the_tenant(
    checker: Checker, where: str, params: dict[str, object]
) -> None:
    limit = "%s" if "%s" in where else "?" if "?" in where else "100"
    sql = f"select count(distinct t.id) as value from support_tickets t where {where} limit {limit}"
    record = {"id": "r1", "principal": "acme_analyst", "sql": sql, **params}
    assert trace_faults(checker, record) == set()
    if "params" in params:
        values = params["params"]
        other = ["beta", 100] if isinstance(values, list) else {"tenant": "beta"}
        faults = trace_faults(checker, {**record, "params": other})
        assert {
            "tenant_scope_missing:support_tickets",
            "cross_tenant_literal:support_tickets",
        } <= faults


def test_in_subquery_read_is_confined_by_the_outer_confined_column(checker: Checker) -> None:
    sql = (
        "select count(*) from accounts a where a.tenant_id = 'acme' "
        "and a.id in (select account_id from support_tickets where severity = 'high') limit 100"
    )
    assert compiler_faults(checker, sql) == set()
    # NOT IN keeps accounts with no such ticket: the subquery reads every tenant's tickets
    assert "tenant_scope_missing:support_tickets" in compiler_faults(
        checker, sql.replace(" in (", " not in (")
    )
    unscoped = sql.replace("a.tenant_id = 'acme' and ", "")
    faults = compiler_faults(checker, unscoped)
    assert {"tenant_scope_missing:accounts", "tenant_scope_missing:support_tickets"} <= faults


ACME_REGIONS = "select a.region from accounts a where a.tenant_id = 'acme'"


@pytest.mark.parametrize(
    ("sql", "fault"),
    [
        (f"select x.region from ({ACME_REGIONS} limit 100) x", None),
        (f"with x as ({ACME_REGIONS} fetch first 100 rows only) select region from x", None),
        (f"with x as ({ACME_REGIONS} limit 100) select region from x limit 5000", None),
        (f"with x as ({ACME_REGIONS} limit 5000) select region from x", "row_budget_exceeded:5000"),
        # a join or a set-returning function can return more rows than the source's limit
        (
            f"select x.region from ({ACME_REGIONS} limit 100) x cross join tenants g "
            "where g.id = 'acme'",
            "row_budget_missing:analyst",
        ),
        (
            f"select x.region, generate_series(1, 50) from ({ACME_REGIONS} limit 100) x",
            "row_budget_missing:analyst",
        ),
    ],
)
def test_row_budget_through_a_limited_source(checker: Checker, sql: str, fault: str | None) -> None:
    faults = {f for f in compiler_faults(checker, sql) if f.startswith("row_budget")}
    assert faults == ({fault} if fault else set())


@pytest.mark.parametrize(
    "select",
    [
        "a.customer_email as e",
        "lower(a.customer_email) as e",
        "case when a.region = 'eu' then a.customer_email else 'n/a' end as e",
        "a.name || ' <' || a.customer_email || '>' as e",
        "string_agg(a.customer_email, ',') as e",
        "(select max(b.customer_email) from accounts b where b.id = a.id) as e",
    ],
)
def test_sensitive_column_reaching_the_output_is_flagged(checker: Checker, select: str) -> None:
    base = f"select {select} from accounts a where a.tenant_id = 'acme' limit 100"
    assert "sensitive_column_output:customer_email" in compiler_faults(checker, base)
    cte = (
        f"with x as (select {select} from accounts a where a.tenant_id = 'acme') "
        "select y.e from (select e from x) y limit 100"
    )
    assert "sensitive_column_output:customer_email" in compiler_faults(checker, cte)
    # the role that may see the dimension is not flagged
    assert compiler_faults(checker, base, principal="acme_finance_admin") == set()


@pytest.mark.parametrize(
    ("ir", "declared", "drifted"),
    [
        ("ticket_count", "count(distinct t.id)", "count(t.id)"),
        ("average_resolution_hours", "avg(t.resolution_hours)", "avg(distinct t.resolution_hours)"),
        (
            "escalated_tickets",
            "count(distinct t.id) filter (where t.escalated)",
            "count(t.id) filter (where t.escalated)",
        ),
        ("net_revenue", "sum(i.net_amount_cents)", "sum(i.gross_amount_cents)"),
        ("net_revenue", "sum(i.net_amount_cents)", "sum(distinct i.net_amount_cents)"),
    ],
)
def test_each_metric_as_declared_is_clean_and_drifted_is_flagged(
    checker: Checker, ir: str, declared: str, drifted: str
) -> None:
    if ir == "net_revenue":
        src = (
            "from invoices i where i.tenant_id = 'acme' and i.invoice_date >= '2026-05-01' "
            "and i.invoice_date < '2026-06-01' limit 100"
        )
    else:
        src = f"from support_tickets t where t.tenant_id = 'acme' and {WINDOW} limit 100"
    query = f"{ir} during last_month limit 100"
    assert compiler_faults(checker, f"select {declared} as value {src}", query) == set()
    faults = compiler_faults(checker, f"select {drifted} as value {src}", query)
    assert f"metric_aggregate_mismatch:{ir}" in faults


def test_tenant_filter_in_having_on_the_group_key(checker: Checker) -> None:
    sql = (
        "select a.tenant_id, count(*) from accounts a group by a.tenant_id "
        "having a.tenant_id = 'acme' limit 100"
    )
    assert compiler_faults(checker, sql) == set()
    weak = sql.replace("having a.tenant_id = 'acme'", "having a.tenant_id = 'acme' or count(*) > 1")
    assert "tenant_scope_missing:accounts" in compiler_faults(checker, weak)


def test_union_all_branches_each_scoped(checker: Checker) -> None:
    both = (
        "select u.region from (select region from accounts where tenant_id = 'acme' union all "
        "select a.region from accounts a join support_tickets t on t.account_id = a.id "
        "where t.tenant_id = 'acme') u limit 100"
    )
    assert compiler_faults(checker, both) == set()
    one = both.replace("where t.tenant_id = 'acme'", "where t.severity = 'high'")
    faults = compiler_faults(checker, one)
    assert {"tenant_scope_missing:accounts", "tenant_scope_missing:support_tickets"} <= faults


def test_window_functions_do_not_aggregate_or_hide_columns(checker: Checker) -> None:
    sql = (
        "select a.region, count(*) over (partition by a.region) as n from accounts a "
        "where a.tenant_id = 'acme' limit 100"
    )
    assert compiler_faults(checker, sql) == set()
    by_email = sql.replace("partition by a.region", "partition by a.customer_email")
    assert any(f.startswith("sensitive_column") for f in compiler_faults(checker, by_email))


def test_fiscal_label_needs_the_fiscal_bounds(checker: Checker) -> None:
    fiscal = "ticket_count during last_fiscal_month limit 100"
    ok = tickets_where("t.opened_at between '2026-04-27' and '2026-05-24'")
    assert compiler_faults(checker, ok, fiscal) == set()
    calendar = tickets_where("t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01'")
    assert "time_bounds_mismatch:last_fiscal_month" in compiler_faults(checker, calendar, fiscal)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "with a1 as (select * from accounts), a2 as (select * from a1) "
            "select region from a2 where tenant_id = 'acme' limit 100",
            set(),
        ),
        (
            "with a1 as (select id, tenant_id as t from accounts), "
            "a2 as (select t as tn, id from a1) select id from a2 where tn in ('acme') limit 100",
            set(),
        ),
        (
            "with a1 as (select * from accounts), a2 as (select * from a1) "
            "select region from a2 where tenant_id = 'acme' union all select region from a1 "
            "limit 100",
            {"tenant_scope_missing:accounts"},
        ),
        (
            "with a1 as (select * from accounts), a2 as (select * from a1) "
            "select region from a2 where tenant_id = 'beta' limit 100",
            {"tenant_scope_missing:accounts", "cross_tenant_literal:accounts"},
        ),
    ],
)
def test_tenant_filter_at_the_end_of_a_cte_chain(
    checker: Checker, sql: str, expected: set[str]
) -> None:
    assert compiler_faults(checker, sql) == expected


@pytest.mark.parametrize(
    ("derived", "scoped"),
    [
        # per-key computations: only rows of the joined (acme) accounts shape the output
        ("select account_id, count(*) as n from support_tickets group by account_id", True),
        (
            "select distinct on (account_id) account_id, plan from subscriptions "
            "order by account_id, started_on desc",
            True,
        ),
        # values or row choices computed over every tenant's rows leak through the join
        ("select account_id, rank() over (order by seats desc) as n from subscriptions", False),
        ("select account_id, plan from subscriptions order by seats desc limit 10", False),
        (
            "select distinct on (plan) account_id, plan from subscriptions "
            "order by plan, started_on desc",
            False,
        ),
    ],
)
def test_outer_confinement_of_a_derived_table_needs_per_row_outputs(
    checker: Checker, derived: str, scoped: bool
) -> None:
    sql = (
        f"select a.region from accounts a left join ({derived}) x on x.account_id = a.id "
        "where a.tenant_id = 'acme' limit 100"
    )
    table = "support_tickets" if "support_tickets" in derived else "subscriptions"
    faults = compiler_faults(checker, sql)
    assert (f"tenant_scope_missing:{table}" not in faults) == scoped, faults
