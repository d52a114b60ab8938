"""The built-in ``finance_saas`` domain (issue 13 item 1): the published shape, the 4-4-5 fiscal
calendar, the documented per-firm values on PostgreSQL, and the acceptance of its suites.

- the domain has the published tables, keys, principals, roles, metrics and dimensions
  (COMPAT.md §7) and RLS enabled, not forced, on ``policystrata.firm_id``;
- its fiscal months are a 4-4-5 calendar, unlike the calendar month and support_saas's;
- the per-firm values of docs/domain.md hold under each firm's row-level security, with the
  session setting the rules derive from the policies (a session on ``app.tenant_id`` sees
  nothing);
- the seeded suite kills every non-equivalent operator at its own layer, with the expected
  class and containment; generated, heldout_v1 and clean_controls draws behave (the 500-case
  run and the byte-identical runs with real rows are in tests/test_finance_runs.py);
- ``init-domain``, ``init-scan --source-domain``, ``check`` and ``scan`` work on it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.bench.generate import GenStats, generate
from policystrata.bench.runner import Runner, write_run
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.db.session import Database
from policystrata.model import load_domain
from policystrata.stack.faults import OPERATORS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "domain.md"
FIRMS = ("north", "south", "west")
#: Operators this shape gives no mutation point (docs/domain.md, "Operators").
NO_MUTATION_POINT = {"compiler_removes_distinct", "compiler_inner_join_drops_rows"}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open("finance_saas")


def fitting(checker: Checker) -> set[str]:
    """The operators that fit finance_saas (the ClickHouse ones act on row policies, views and
    release thresholds it does not have: stillborn there, tested in tests/test_clickhouse.py)."""
    return {op_id for op_id, op in OPERATORS.items() if op.fits(checker.domain)}


def run_cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


# ---- the published shape ---------------------------------------------------------------------


def test_the_published_tables_keys_and_row_security() -> None:
    d = load_domain("finance_saas")
    tables = d.schema.tables
    assert list(tables) == ["advisors", "households", "accounts", "transactions", "balances"]
    assert tables["households"].columns == {
        "id": "text",
        "firm_id": "text",
        "legacy_firm_id": "text",
        "advisor_id": "text",
        "name": "text",
        "tax_id": "text",
        "segment": "text",
    }
    assert tables["transactions"].columns == {
        "id": "text",
        "account_id": "text",
        "transaction_date": "date",
        "transaction_type": "text",
        "amount_cents": "integer",
        "gross_amount_cents": "integer",
        "fee_cents": "integer",
    }
    assert all(t.primary_key == ["id"] for t in tables.values())
    fks = {(n, fk.column, fk.ref_table) for n, t in tables.items() for fk in t.foreign_keys}
    assert fks == {
        ("households", "advisor_id", "advisors"),
        ("accounts", "household_id", "households"),
        ("transactions", "account_id", "accounts"),
        ("balances", "account_id", "accounts"),
    }
    assert "legacy_firm_id" not in tables["households"].not_null
    assert set(d.schema.rls_enabled) == set(tables)
    assert not d.schema.facts.by_pred("rls_forced")  # enabled, not forced (as published)
    assert d.tenant_columns() == {"advisors": "firm_id", "households": "firm_id"}


def test_the_published_policy() -> None:
    pol = load_domain("finance_saas").policy
    assert {k: (p.role, p.tenant_ids) for k, p in pol.principals.items()} == {
        "north_advisor": ("advisor", ["north"]),
        "north_ops_admin": ("ops_admin", ["north"]),
        "south_advisor": ("advisor", ["south"]),
    }
    advisor, ops = pol.roles["advisor"], pol.roles["ops_admin"]
    assert advisor.allowed_metrics == ["aum", "net_deposits", "fee_revenue"]
    assert advisor.allowed_dimensions == [
        "advisor_region",
        "account_type",
        "household_segment",
        "month",
    ]
    assert advisor.allowed_time_ranges == ["last_month", "last_fiscal_month", "quarter_to_date"]
    assert (advisor.max_rows, advisor.max_cost, advisor.aggregate_only) == (1000, 120, True)
    assert set(ops.allowed_metrics) == {*advisor.allowed_metrics, "gross_deposits"}
    assert set(ops.allowed_dimensions) == {
        *advisor.allowed_dimensions,
        "firm_id",
        "household_name",
        "tax_id",
    }
    assert (ops.max_rows, ops.max_cost, ops.aggregate_only) == (5000, 600, False)
    assert {m: (x.expression, x.table, x.aliases) for m, x in pol.metrics.items()} == {
        "aum": ("sum(balances.market_value_cents)", "balances", ["assets"]),
        "net_deposits": ("sum(transactions.amount_cents)", "transactions", ["flows"]),
        "gross_deposits": (
            "sum(transactions.gross_amount_cents)",
            "transactions",
            ["inflows", "gross_flows"],
        ),
        "fee_revenue": ("sum(transactions.fee_cents)", "transactions", ["advisory_fees"]),
    }
    dims = pol.dimensions
    assert dims["month"].column == "date_trunc('month', transactions.transaction_date)"
    assert {d for d, x in dims.items() if x.sensitive} == {"firm_id", "household_name", "tax_id"}
    for d in ("household_name", "tax_id", "firm_id"):  # advisors may not see household ids
        assert dims[d].allowed_roles == ["ops_admin"]
    # the costs docs/domain.md states against the advisor's budget of 120
    cost = pol.query_cost
    assert cost("net_deposits", ["advisor_region"], 100) == 66
    assert cost("aum", ["account_type", "month"], 100) == 91
    assert cost("aum", ["advisor_region", "household_segment", "month"], 100) == 121
    assert cost("aum", ["account_type", "month", "advisor_region"], 100) == 116
    assert (
        min(cost(m, list(advisor.allowed_dimensions), 100) for m in advisor.allowed_metrics) == 126
    )


def test_the_fiscal_calendar_is_4_4_5_and_differs_from_the_calendar_month() -> None:
    d = load_domain("finance_saas")
    start = dt.date(2026, 1, 5)  # the fiscal year's first Monday
    periods = []
    for weeks in (4, 4, 5) * 4:
        end = start + dt.timedelta(weeks=weeks)
        periods.append((start, end))
        start = end
    as_of = d.policy.as_of
    current = next(i for i, (s, e) in enumerate(periods) if s <= as_of < e)
    last = periods[current - 1]
    quarter_start = periods[current - current % 3][0]
    ranges = d.time_ranges()
    assert ranges["last_fiscal_month"] == (last[0].isoformat(), last[1].isoformat(), "fiscal")
    assert ranges["quarter_to_date"] == (quarter_start.isoformat(), as_of.isoformat(), "fiscal")
    assert ranges["last_month"] == ("2026-05-01", "2026-06-01", "calendar")
    assert ranges["last_fiscal_month"][:2] != ranges["last_month"][:2]
    support = load_domain("support_saas").time_ranges()["last_fiscal_month"]
    assert ranges["last_fiscal_month"] != support


# ---- the tenant setting -----------------------------------------------------------------------


def test_the_tenant_setting_is_derived_from_the_policies(checker: Checker) -> None:
    assert checker.tenant_settings() == ("policystrata.firm_id",)
    assert Checker.open("support_saas").tenant_settings() == ("app.tenant_id",)


# ---- the documented values on PostgreSQL -------------------------------------------------------


def documented() -> dict[tuple[str, str], list[str]]:
    section = DOC.read_text(encoding="utf-8").split("## The `finance_saas` built-in domain")[1]
    rows = {}
    for m in re.finditer(
        r"^\| `(\w+)` \| (\w+) \| (-?\d+) \| (-?\d+) \| (-?\d+) \|$", section, re.M
    ):
        rows[(m.group(1), m.group(2))] = [m.group(3), m.group(4), m.group(5)]
    return rows


@pytest.fixture
def finance_db(make_db: Callable[..., Database], checker: Checker) -> Database:
    d = checker.domain
    return make_db(
        (d.path / "schema.sql").read_text(),
        (d.path / "seed.sql").read_text(),
        tenant_settings=checker.tenant_settings(),
    )


@pytest.mark.postgres
def test_documented_values_match_postgres(finance_db: Database) -> None:
    d = load_domain("finance_saas")
    doc = documented()
    assert len(doc) == 16
    ranges = d.time_ranges()
    for (metric, label), expected in doc.items():
        m = d.policy.metrics[metric]
        table, col = d.metric_time_column(metric)  # type: ignore[misc]
        start, end, _ = ranges[label]
        # no firm predicate: the firm's row-level security (through households) scopes the rows
        sql = finance_db.vet(
            f"SELECT {m.expression} AS v FROM {m.table} "
            f"WHERE {table}.{col} >= DATE '{start}' AND {table}.{col} < DATE '{end}'"
        )
        for firm, want in zip(FIRMS, expected, strict=True):
            (value,) = finance_db.run_app(sql, firm).rows[0]
            assert Decimal(str(value or 0)) == Decimal(want), (metric, label, firm)


@pytest.mark.postgres
def test_documented_fault_values_match_postgres(finance_db: Database) -> None:
    lm = "t.transaction_date >= DATE '2026-05-01' AND t.transaction_date < DATE '2026-06-01'"
    qtd = "t.transaction_date >= DATE '2026-04-06' AND t.transaction_date < DATE '2026-06-01'"
    chain = "JOIN accounts a ON a.id = t.account_id JOIN households h ON h.id = a.household_id"

    def app(sql: str, firm: str = "north") -> int:
        return int(finance_db.run_app(finance_db.vet(sql), firm).rows[0][0])

    def bypass(sql: str) -> int:
        return int(finance_db.run_bypass(finance_db.vet(sql), "north").rows[0][0])

    net = "SELECT sum(t.amount_cents) FROM transactions t"
    calendar_quarter = f"{net} WHERE t.transaction_date >= DATE '2026-04-01'"
    calendar_quarter += " AND t.transaction_date < DATE '2026-06-01'"
    assert (app(f"{net} WHERE {lm}"), app(f"{net} WHERE {lm}", "south")) == (860600, 285900)
    assert (app(calendar_quarter), app(calendar_quarter, "south")) == (2048600, 1196700)
    legacy = f"{net} {chain} WHERE h.legacy_firm_id = 'north' AND {lm}"
    assert (bypass(legacy), app(legacy)) == (553900, 425200)
    assert bypass(f"{net} WHERE {lm}") == 2037500
    gross = f"SELECT sum(t.gross_amount_cents) FROM transactions t WHERE {lm}"
    assert (app(gross), app(gross, "south")) == (940000, 410000)
    fanout = f"{net} JOIN balances b ON b.account_id = t.account_id WHERE {qtd}"
    assert (app(fanout), app(fanout, "south")) == (2967800, 2888400)


@pytest.mark.postgres
def test_a_session_on_another_setting_sees_no_row(make_db: Callable[..., Database]) -> None:
    """Why the setting must be derived: the policies read policystrata.firm_id, so a session
    that sets only app.tenant_id is confined to nothing (fail closed: no row)."""
    d = load_domain("finance_saas")
    db = make_db(
        (d.path / "schema.sql").read_text(),
        (d.path / "seed.sql").read_text(),
        tenant_settings=("app.tenant_id",),
    )
    sql = db.vet("SELECT count(*) FROM households")
    assert db.run_app(sql, "north").rows == [[0]]
    assert db.run_bypass(sql, "north").rows == [[6]]


# ---- the suites --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(checker: Checker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fin_seeded")
    src = resolve_suite(checker.domain, "seeded")
    summary = write_run(Runner(checker, minimize=True), src.cases(), out, {"suite": "seeded"})
    return out, summary


def test_seeded_kills_every_non_equivalent_operator_at_its_own_layer(
    seeded: tuple[Path, dict], checker: Checker
) -> None:
    out, summary = seeded
    c = summary["counts"]
    assert c["cases"] >= 40
    assert c["survived"] == 0 and c["false_positive"] == 0 and c["error"] == 0
    assert c["kill_rate"] == 1.0 and c["killed"] == c["non_equivalent_mutants"] >= 40
    assert c["localization_accuracy"] == 1.0 and c["class_accuracy"] == 1.0
    assert c["containment_accuracy"] == 1.0
    assert c["controls"] >= 10 and c["clean"] == c["controls"]
    per = summary["per_operator"]
    for op in fitting(checker) - NO_MUTATION_POINT:
        assert per[op]["killed"] >= 3, op  # several principals, metrics, dimensions, ranges
    for op in NO_MUTATION_POINT:
        assert per[op]["killed"] == 0 and per[op]["stillborn"] == per[op]["cases"] == 1, op
    # the mutants without anything to act on are reported as such, never as kills
    records = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    unlabeled = {
        r["task"] for r in records if r["mutation"] != "none" and not r["expected_witness_class"]
    }
    statuses = {r["task"]: r["status"] for r in records}
    assert unlabeled and all(statuses[t] in ("equivalent", "stillborn") for t in unlabeled)
    principals = {r["principal"] for r in records if r["status"] == "killed"}
    assert principals == {"north_advisor", "north_ops_admin", "south_advisor"}


def test_generated_heldout_and_clean_controls(checker: Checker, tmp_path: Path) -> None:
    stats = GenStats()
    gen = list(generate(checker.domain, "generated", 70, 1729, stats=stats))
    held = list(generate(checker.domain, "heldout_v1", 40))
    assert len({c.key() for c in gen}) == len(gen) == stats.produced >= 55
    assert not {c.key() for c in gen} & {c.key() for c in held}
    assert {c.mutation for c in gen} == fitting(checker) - NO_MUTATION_POINT
    runner = Runner(checker, minimize=False)
    summary = write_run(runner, iter(gen + held), tmp_path / "gen", {"suite": "generated"})
    c = summary["counts"]
    assert c["survived"] == 0 and c["error"] == 0 and c["kill_rate"] == 1.0
    assert c["localization_accuracy"] == 1.0 and c["class_accuracy"] == 1.0
    src = resolve_suite(checker.domain, "clean_controls", count=60)
    summary = write_run(runner, src.cases(), tmp_path / "cc", {"suite": "clean_controls"})
    c = summary["counts"]
    assert c["controls"] >= 55 and c["false_positive"] == 0 and c["clean"] == c["controls"]


# ---- commands ----------------------------------------------------------------------------------


def test_init_domain_init_scan_scan_and_check(tmp_path: Path) -> None:
    code, out = run_cli("init-domain", "finance_saas", "--out", str(tmp_path / "dom"))
    assert code == 0 and (tmp_path / "dom" / "suites" / "seeded.yaml").is_file(), out
    assert load_domain(tmp_path / "dom").policy.principals.keys() == {
        "north_advisor",
        "north_ops_admin",
        "south_advisor",
    }
    scan = tmp_path / "scan"
    code, out = run_cli("init-scan", "--source-domain", "finance_saas", "--out", str(scan))
    assert code == 0, out
    records = [json.loads(line) for line in (scan / "traces.jsonl").read_text().splitlines()]
    assert {r["principal"] for r in records} <= {
        "north_advisor",
        "north_ops_admin",
        "south_advisor",
    }
    assert sum("sql" in r for r in records) == 3
    config = scan / "policystrata.yaml"
    code, out = run_cli("scan", "--config", str(config), "--out", str(tmp_path / "out"))
    assert code == 0, out
    report = json.loads((tmp_path / "out" / "scan.json").read_text())
    # clean, and no fuzz survivor either: the alias mutants are equivalent (tests/test_fuzz.py)
    assert report["domain"] == "finance_saas" and not report["findings"]
    assert report["fuzz"]["totals"]["survived"] == 0

    ir = "net_deposits by advisor_region during last_month limit 100"
    sql = (
        "select advisors.region, sum(transactions.amount_cents) as value from transactions "
        "join accounts on accounts.id = transactions.account_id "
        "join households on households.id = accounts.household_id "
        "join advisors on advisors.id = households.advisor_id "
        "where households.firm_id = 'north' and advisors.firm_id = 'north' "
        "and transactions.transaction_date >= date '2026-05-01' "
        "and transactions.transaction_date < date '2026-06-01' group by advisors.region limit 100"
    )
    base = ["check", "--domain", "finance_saas", "--principal", "north_advisor", "--ir", ir]
    code, out = run_cli(*base, "--sql", sql, "--db", "none")
    assert code == 0, out
    # scoped through households by EXISTS: still clean
    exists = (
        "select sum(t.amount_cents) as value from transactions t where exists (select 1 from "
        "accounts a join households h on h.id = a.household_id where a.id = t.account_id and "
        "h.firm_id = 'north') and t.transaction_date >= date '2026-05-04' "
        "and t.transaction_date < date '2026-06-01' limit 100"
    )
    fiscal = ["--ir", "net_deposits during last_fiscal_month limit 100"]
    code, out = run_cli(*base[:-2], *fiscal, "--sql", exists, "--db", "none")
    assert code == 0, out
    # the firm read from the session setting the policies use is the principal's firm
    by_setting = exists.replace("'north'", "current_setting('policystrata.firm_id', true)")
    code, out = run_cli(*base[:-2], *fiscal, "--sql", by_setting, "--db", "none")
    assert code == 0, out
    # another firm, the legacy owner, a calendar month for the fiscal one: findings
    for bad, check in (
        (sql.replace("'north'", "'south'"), "cross_tenant_literal"),
        (
            sql.replace("households.firm_id", "households.legacy_firm_id"),
            "tenant_value_on_other_column",
        ),
        (exists.replace("2026-05-04", "2026-05-01"), "time_bounds_mismatch"),
    ):
        ir_args = fiscal if "transactions t" in bad else ["--ir", ir]
        code, out = run_cli(*base[:-2], *ir_args, "--sql", bad, "--db", "none", "--format", "json")
        assert code == 1, (bad, out)
        assert check in out, (check, out)


def test_the_demo_names_every_built_in_domain() -> None:
    from policystrata.cli.bench import builtin_domains

    assert {"support_saas", "finance_saas"} <= set(builtin_domains())
    code, out = run_cli("demo", "--help")
    assert code == 0 and "finance_saas" in out
    code, out = run_cli("demo", "--domain", "finance_sas")
    assert code == 2 and "finance_saas" in out
