"""Compiler rules over lowered SQL: issue #3's acceptance verdicts, through the check pipeline
(support_saas domain, shipped rules)."""

from __future__ import annotations

import pytest

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.ir import parse_ir
from policystrata.model import load_domain


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(load_domain("support_saas"))


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
    base = (
        "select count(distinct t.id) from support_tickets t "
        f"where t.tenant_id = 'acme' and {WINDOW}"
    )
    assert "row_budget_exceeded:5000" in compiler_faults(checker, base + " limit 5000", TC)
    assert "row_budget_missing:analyst" in compiler_faults(checker, base, TC)


def test_sensitive_column_through_subquery_for_analyst(checker: Checker) -> None:
    sql = (
        "select y.m from (select a.customer_email as m from accounts a "
        "where a.tenant_id = 'acme') y limit 100"
    )
    assert "sensitive_column_output:customer_email" in compiler_faults(checker, sql)
    assert "sensitive_column_output:customer_email" not in compiler_faults(
        checker, sql, principal="acme_finance_admin"
    )


def test_absent_time_filter_is_not_judged_but_relative_is(checker: Checker) -> None:
    sql = "select count(distinct t.id) from support_tickets t where t.tenant_id = 'acme' limit 100"
    assert compiler_faults(checker, sql, TC) == set()
    rel = sql.replace("limit", "and t.opened_at >= current_date - interval '30 days' limit")
    assert "time_bounds_mismatch:last_month" in compiler_faults(checker, rel, TC)


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
        'and "St".opened_at >= \'2026-05-01\' and "St".opened_at < \'2026-06-01\' limit 100'
    )
    assert "tenant_scope_missing:support_tickets" in compiler_faults(checker, quoted, TC)
