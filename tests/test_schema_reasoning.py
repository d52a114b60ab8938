"""Issue 12 and issue 11 item 4: rules that reason from the schema of the published support_saas
(child tables scoped through their parents), and SQL that must mean what its IR asked.

Each false positive and miss the issue lists has a test here, through the CLI where the issue
states an acceptance command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.ir import parse_ir
from policystrata.model import load_domain
from policystrata.paths import domains_dir

IR = "ticket_count by region during last_month limit 100"
SCOPED = (
    "select accounts.region, count(distinct support_tickets.id) as value "
    "from support_tickets join accounts on accounts.id = support_tickets.account_id "
    "where accounts.tenant_id = 'acme' "
)
WINDOW = (
    "and support_tickets.opened_at >= date '2026-05-01' "
    "and support_tickets.opened_at < date '2026-06-01' "
)
GROUP = "group by accounts.region limit 100"


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open("support_saas")


def faults(checker: Checker, sql: str, ir: str | None = IR, **kw: object) -> set[str]:
    case = Case(
        id="c",
        principal=str(kw.pop("principal", "acme_analyst")),
        sql=sql,
        ir=parse_ir(ir) if ir else None,
        **kw,  # type: ignore[arg-type]
    )
    result = checker.engine.evaluate(checker.case_facts(case))
    return {f"{a[3]}:{a[4]}" for a in result.atoms("layer_fault")}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def check(sql: str, ir: str = IR) -> Result:
    return cli(
        "check", "--db", "none", "--domain", "support_saas", "--principal", "acme_analyst",
        "--ir", ir, "--sql", sql, "--format", "json",
    )  # fmt: skip


# ---- issue 11 item 4: the published shape, unknown columns -------------------------------------


def test_init_domain_writes_the_published_table_and_column_set(tmp_path: Path) -> None:
    assert cli("init-domain", "support_saas", "--out", str(tmp_path / "d")).exit_code == 0
    d = load_domain(tmp_path / "d")
    published = {
        "tenants": {"id", "name"},
        "accounts": {"id", "tenant_id", "legacy_tenant_id", "name", "region", "customer_email"},
        "subscriptions": {"id", "account_id", "plan", "status"},
        "invoices": {
            "id", "subscription_id", "invoice_date", "gross_amount_cents", "net_amount_cents",
        },
        "agents": {"id", "tenant_id", "email", "name"},
        "support_tickets": {
            "id", "account_id", "assigned_agent_id", "severity", "escalated", "resolution_hours",
        },
        "ticket_events": {"id", "ticket_id", "event_type", "created_at"},
    }  # fmt: skip
    assert set(d.schema.tables) == set(published)
    for table, cols in published.items():
        info = d.schema.tables[table]
        assert cols <= set(info.columns), table
        assert info.primary_key == ["id"]
    fks = {
        (t, fk.column, fk.ref_table) for t, i in d.schema.tables.items() for fk in i.foreign_keys
    }
    assert {
        ("subscriptions", "account_id", "accounts"),
        ("invoices", "subscription_id", "subscriptions"),
        ("support_tickets", "account_id", "accounts"),
        ("support_tickets", "assigned_agent_id", "agents"),
        ("ticket_events", "ticket_id", "support_tickets"),
    } <= fks
    types = d.schema.tables["invoices"].columns
    assert (types["id"], types["subscription_id"], types["invoice_date"]) == (
        "serial", "integer", "date",
    )  # fmt: skip
    # children carry no tenant column: they are scoped through their parents
    assert set(d.tenant_columns()) == {"tenants", "accounts", "agents"}
    assert set(d.schema.rls_forced) == set(published)


def test_a_published_join_checks_clean_and_an_unknown_column_is_a_finding() -> None:
    sql = (
        "select sum(invoices.net_amount_cents) as value from invoices "
        "join subscriptions on subscriptions.id = invoices.subscription_id "
        "join accounts on accounts.id = subscriptions.account_id "
        "where accounts.tenant_id = 'acme' and invoices.invoice_date >= date '2026-05-01' "
        "and invoices.invoice_date < date '2026-06-01' limit 100"
    )
    ir = "net_revenue during last_month limit 100"
    ok = check(sql, ir)
    assert ok.exit_code == 0, ok.output
    bad = check(sql.replace("sum(invoices.net_amount_cents)", "sum(invoices.nonexistent)"), ir)
    assert bad.exit_code == 1
    ws = [w for r in json.loads(bad.stdout)["results"] for w in r["witnesses"]]
    unknown = [w for w in ws if w["check"] == "unknown_column"]
    assert [w["key"] for w in unknown] == ["nonexistent"]
    atoms = [f["atom"] for f in unknown[0]["supporting_facts"]]
    assert 'sql_alias_column("cli", "s0", "invoices", "nonexistent")' in atoms
    assert any(a.startswith('has_column("invoices", "nonexistent")') for a in atoms)  # absent


def test_unknown_tables_and_unresolvable_columns_are_findings(checker: Checker) -> None:
    assert "unknown_column:accountz" in faults(
        checker, SCOPED.replace("join accounts", "join accountz")
    )
    assert "unknown_column:tenant_id" in faults(
        checker, "select count(*) from support_tickets where tenant_id = 'acme'"
    )
    # an output alias in GROUP BY and a correlated column are no unknown columns
    sql = (
        "select accounts.region as r, count(distinct t.id) as value from support_tickets t "
        "join accounts on accounts.id = t.account_id where accounts.tenant_id = 'acme' "
        "and exists (select 1 from accounts x where x.id = account_id) "
        "and t.opened_at >= date '2026-05-01' and t.opened_at < date '2026-06-01' "
        "group by r limit 100"
    )
    assert faults(checker, sql) == set()


# ---- issue 12: tenant scope through foreign keys, in SQL and in row security -------------------


@pytest.mark.parametrize(
    "sql",
    [
        SCOPED + WINDOW + GROUP,
        # EXISTS / IN on the scoped parent
        "select a.region, count(distinct t.id) as value from support_tickets t "
        "join accounts a on a.id = t.account_id "
        "where exists (select 1 from accounts x "
        "where x.id = t.account_id and x.tenant_id = 'acme') "
        "and t.opened_at between '2026-05-01' and '2026-05-31' group by a.region limit 100",
        "select a.region, count(distinct t.id) as value from support_tickets t "
        "join accounts a on a.id = t.account_id "
        "where t.account_id in (select id from accounts where tenant_id = 'acme') "
        "and date_trunc('month', t.opened_at) = '2026-05-01' group by 1 fetch first 100 rows only",
        # a CTE of the child, scoped by the consumer's join to the parent, bound parameters
        "with t as (select * from support_tickets where opened_at >= '2026-05-01' "
        "and opened_at < '2026-06-01') select a.region as region, count(distinct t.id) as value "
        "from t join accounts a on a.id = t.account_id where a.tenant_id = $1 "
        "group by region limit $2",
    ],
    ids=["join", "exists", "in_subquery", "cte_params"],
)
def test_equivalent_forms_are_clean(checker: Checker, sql: str) -> None:
    assert faults(checker, sql, params={"$1": "acme", "$2": 100}) == set()


def test_children_unscoped_are_found_and_contained_by_exists_row_security(
    checker: Checker,
) -> None:
    sql = SCOPED.replace("where accounts.tenant_id = 'acme' ", "where true ") + WINDOW + GROUP
    case = Case(id="c", principal="acme_analyst", sql=sql, ir=parse_ir(IR))
    ws = checker.check(case).witnesses
    found = {(w.check, w.key, w.containment_layer) for w in ws}
    assert ("tenant_scope_missing", "support_tickets", "database") in found
    assert ("tenant_scope_missing", "accounts", "database") in found


def test_row_security_through_parents_is_read_as_a_query(tmp_path: Path) -> None:
    """A child policy scoped through its parent by EXISTS contains; one whose subquery does not
    reach a tenant column does not."""
    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    schema = (dom / "schema.sql").read_text()
    weakened = schema.replace(
        "WHERE a.id = support_tickets.account_id\n"
        "          AND a.tenant_id = current_setting('app.tenant_id', true)));",
        "WHERE a.id = support_tickets.account_id));",
    )
    assert weakened != schema
    (dom / "schema.sql").write_text(weakened)
    checker = Checker.open(dom)
    sql = SCOPED + WINDOW + GROUP
    assert "tenant_rows_not_contained:support_tickets" in faults(checker, sql)
    assert "tenant_rows_not_contained:accounts" not in faults(checker, sql)


def test_a_numeric_tenant_literal_compares_by_the_column_type(tmp_path: Path) -> None:
    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    policy = (dom / "policy.yaml").read_text().replace("tenant_ids: [acme]", "tenant_ids: ['4821']")
    (dom / "policy.yaml").write_text(policy)
    schema = (dom / "schema.sql").read_text()
    (dom / "schema.sql").write_text(
        schema.replace(
            "tenant_id text NOT NULL REFERENCES tenants (id),\n    legacy",
            "tenant_id integer NOT NULL,\n    legacy",
        )
    )
    checker = Checker.open(dom)
    sql = (SCOPED + WINDOW + GROUP).replace("'acme'", "4821")
    assert faults(checker, sql) == set()
    assert "tenant_scope_missing:accounts" in faults(checker, sql.replace("4821", "7310"))


def test_a_uuid_tenant_literal_compares_case_blind_only_on_a_uuid_column(tmp_path: Path) -> None:
    tenant = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    policy = (
        (dom / "policy.yaml").read_text().replace("tenant_ids: [acme]", f"tenant_ids: ['{tenant}']")
    )
    (dom / "policy.yaml").write_text(policy)
    sql = (SCOPED + WINDOW + GROUP).replace("'acme'", f"'{tenant.upper()}'")
    text_column = Checker.open(dom)
    assert "tenant_scope_missing:accounts" in faults(text_column, sql)  # 'ABC' <> 'abc' in text
    schema = (dom / "schema.sql").read_text()
    (dom / "schema.sql").write_text(
        schema.replace(
            "    tenant_id text NOT NULL REFERENCES tenants (id),\n    legacy",
            "    tenant_id uuid NOT NULL,\n    legacy",
        )
    )
    assert faults(Checker.open(dom), sql) == set()


# ---- sensitive exposure ------------------------------------------------------------------------


def test_filtering_the_own_tenant_on_a_sensitive_tenant_column_exposes_nothing(
    checker: Checker,
) -> None:
    d = load_domain("support_saas")
    assert d.policy.dimensions["tenant_id"].sensitive
    assert faults(checker, SCOPED + WINDOW + GROUP) == set()
    # grouping by it, or filtering on another tenant's value, reveals it
    grouped = (SCOPED + WINDOW + GROUP).replace(
        "group by accounts.region", "group by accounts.region, accounts.tenant_id"
    )
    assert "sensitive_column_read:tenant_id" in faults(checker, grouped)
    email = (SCOPED + WINDOW).replace("where", "where accounts.customer_email like '%@x' and")
    assert "sensitive_column_read:customer_email" in faults(checker, email + GROUP)


# ---- cardinality from keys ---------------------------------------------------------------------


def test_many_to_one_chains_and_grouped_derived_tables_do_not_fan_out(checker: Checker) -> None:
    nr = "net_revenue during last_month limit 100"
    chain = (
        "select sum(invoices.net_amount_cents) as value from invoices "
        "join subscriptions on subscriptions.id = invoices.subscription_id "
        "join accounts on accounts.id = subscriptions.account_id where accounts.tenant_id = 'acme' "
        "and invoices.invoice_date >= '2026-05-01' and invoices.invoice_date < '2026-06-01' "
        "limit 100"
    )
    assert faults(checker, chain, nr) == set()
    fanned = chain.replace(
        "where", "join support_tickets on support_tickets.account_id = accounts.id where"
    )
    assert "fanout_join:invoices" in faults(checker, fanned, nr)
    self_join = (
        "select avg(t.resolution_hours) as value from support_tickets t "
        "join accounts a on a.id = t.account_id "
        "join (select account_id, count(*) n from support_tickets group by account_id) x "
        "on x.account_id = t.account_id where a.tenant_id = 'acme' "
        "and t.opened_at >= '2026-05-01' and t.opened_at < '2026-06-01' limit 10"
    )
    assert (
        faults(checker, self_join, "average_resolution_hours during last_month limit 10") == set()
    )


def test_unknown_keys_lower_confidence(tmp_path: Path) -> None:
    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    schema = (dom / "schema.sql").read_text()
    keyless = schema.replace(
        "CREATE TABLE support_tickets (\n    id serial PRIMARY KEY,",
        "CREATE TABLE support_tickets (\n    id serial,",
    ).replace(
        "    ticket_id integer NOT NULL REFERENCES support_tickets (id),",
        "    ticket_id integer NOT NULL,",
    )
    (dom / "schema.sql").write_text(keyless)
    checker = Checker.open(dom)
    sql = (
        "select sum(invoices.net_amount_cents) as value from invoices "
        "join subscriptions on subscriptions.id = invoices.subscription_id "
        "join accounts on accounts.id = subscriptions.account_id "
        "join support_tickets on support_tickets.account_id = accounts.id "
        "where accounts.tenant_id = 'acme' and invoices.invoice_date >= '2026-05-01' "
        "and invoices.invoice_date < '2026-06-01' limit 100"
    )
    case = Case(
        id="k", principal="acme_analyst", sql=sql, ir=parse_ir("net_revenue during last_month")
    )
    fan = [w for w in checker.check(case).witnesses if w.check == "fanout_join"]
    assert fan and fan[0].confidence == "low"
    known = Checker.open("support_saas").check(case)
    assert [w.confidence for w in known.witnesses if w.check == "fanout_join"] == ["high"]


# ---- row budget --------------------------------------------------------------------------------


def test_row_budget_is_kept_by_provably_bounded_results(checker: Checker) -> None:
    scalar = (
        SCOPED.replace("accounts.region, ", "").replace("join accounts", "join accounts") + WINDOW
    )
    assert faults(checker, scalar, "ticket_count during last_month") == set()
    unbound = SCOPED + WINDOW + "group by accounts.region limit $2"
    assert faults(checker, unbound) == {"row_budget_unknown:$2"}
    assert faults(checker, unbound, params={"$2": 100}) == set()
    assert faults(checker, unbound, params={"$2": 5000}) == {"row_budget_exceeded:5000"}


# ---- the SQL must mean what the IR asked -------------------------------------------------------


def test_acceptance_no_time_filter_is_drift_and_the_months_bounds_are_clean() -> None:
    drift = check(SCOPED + GROUP)
    assert drift.exit_code == 1
    ws = [w for r in json.loads(drift.stdout)["results"] for w in r["witnesses"]]
    assert [(w["witness_class"], w["check"]) for w in ws] == [
        ("semantic_drift", "time_window_missing")
    ]
    absent = [f["atom"] for f in ws[0]["supporting_facts"] if f["kind"] == "absent"]
    assert {'time_filtered("cli")', 'wrong_time_column("cli")'} <= set(absent)
    assert check(SCOPED + WINDOW + GROUP).exit_code == 0


@pytest.mark.parametrize(
    ("sql", "ir", "expected"),
    [
        (SCOPED + WINDOW + "limit 100", IR, {"dimension_missing:region"}),
        (
            SCOPED + WINDOW + "and support_tickets.severity = 'low' " + GROUP,
            IR,
            {"filter_extra:severity"},
        ),
        (
            SCOPED + WINDOW + "group by accounts.region, support_tickets.severity limit 100",
            IR,
            {"grouping_extra:severity"},
        ),
        (
            SCOPED + WINDOW + GROUP,
            "ticket_count by region during last_month where severity = 'low' limit 100",
            {"filter_missing:severity"},
        ),
        (
            SCOPED + WINDOW + "and support_tickets.severity in ('low', 'high') " + GROUP,
            "ticket_count by region during last_month where severity = 'low' limit 100",
            {"filter_looser:high"},
        ),
        (
            SCOPED.replace(
                "accounts.region,", "date_trunc('month', support_tickets.opened_at) as m,"
            )
            + WINDOW
            + "group by 1 limit 100",
            "ticket_count by month during last_month limit 100",
            set(),
        ),
        (
            SCOPED + WINDOW + "group by accounts.region limit 100",
            "ticket_count by month during last_month limit 100",
            {"dimension_missing:month", "grouping_extra:region"},
        ),
    ],
    ids=[
        "no_grouping",
        "extra_filter",
        "extra_grouping",
        "missing_filter",
        "looser",
        "month",
        "month_missing",
    ],
)
def test_drift_from_the_ir(checker: Checker, sql: str, ir: str, expected: set[str]) -> None:
    assert faults(checker, sql, ir) == expected


def test_declared_filters_are_expected_and_the_metric_s_own_is_required(tmp_path: Path) -> None:
    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    schema = (dom / "schema.sql").read_text()
    (dom / "schema.sql").write_text(
        schema.replace(
            "    opened_at date NOT NULL\n", "    opened_at date NOT NULL,\n    deleted_at date\n"
        )
    )
    policy = (dom / "policy.yaml").read_text()
    policy = policy.replace(
        "    grain: ticket\n    cost: 20\n",
        "    grain: ticket\n    cost: 20\n    filters: [\"support_tickets.severity <> 'spam'\"]\n",
        1,
    )
    policy += "tables:\n  support_tickets: {filters: [deleted_at is null]}\n"
    (dom / "policy.yaml").write_text(policy)
    checker = Checker.open(dom)
    base = SCOPED + WINDOW
    full = base + "and support_tickets.severity <> 'spam' and support_tickets.deleted_at is null "
    assert faults(checker, full + GROUP) == set()
    assert faults(checker, base + "and support_tickets.deleted_at is null " + GROUP) == {
        "metric_filter_dropped:ticket_count"
    }
    # the reference compiler adds both by design
    from policystrata.stack.pipeline import Request, run_stack

    run = run_stack(checker.domain, Request("acme_analyst", parse_ir(IR)))
    assert "support_tickets.deleted_at IS NULL" in (run.sql or "")
    case = run.to_case("r", "acme_analyst", parse_ir(IR), None)
    assert checker.check(case).witnesses == []
    # a declared filter that names an unknown column is a load error with file:line
    (dom / "policy.yaml").write_text(policy.replace("deleted_at is null", "removed_at is null"))
    with pytest.raises(Exception, match=r"policy.yaml:\d+: tables.support_tickets.filters\[0\]"):
        Checker.open(dom)
