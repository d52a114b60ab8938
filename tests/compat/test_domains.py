"""COMPAT.md §8: domains as users have them load — without schema.sql (tables from the policy,
checks that need keys or RLS reported as unknown), with a migration-style schema.sql (what
parses is used, what refers to things never created is noted), with ClickHouse DDL."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.ir import parse_ir
from policystrata.lower.policy import compile_domain
from policystrata.lower.schema import parse_schema
from policystrata.model import load_domain
from tests.compat.conftest import FIXTURES, domain_copy

MIGRATIONS = FIXTURES / "domains" / "invoicing_migrations"
ANALYTICS = FIXTURES / "domains" / "product_analytics"
SHOP = FIXTURES / "shop" / "domain"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def preds(path: Path) -> dict[str, set[tuple[object, ...]]]:
    out: dict[str, set[tuple[object, ...]]] = {}
    for f in compile_domain(load_domain(path)):
        out.setdefault(f.pred, set()).add(f.args)
    return out


# ---- no schema.sql ----


def test_a_domain_without_schema_sql_takes_tables_and_columns_from_the_policy() -> None:
    d = load_domain(SHOP)
    assert not d.schema_known and d.warnings == []
    f = preds(SHOP)
    assert "schema_known" not in f
    assert ("orders",) in f["table"] and ("orders",) in f["table_partial"]
    assert {("orders", c, "unknown") for c in ("id", "amount", "status", "created_at")} <= f[
        "table_column"
    ]


def test_checks_that_need_keys_or_rls_do_not_guess_without_schema_sql() -> None:
    """Without schema.sql no key is known: a join must not be called a fan-out, and the
    database's containment must not be called missing (both would be guesses)."""
    checker = Checker.open(SHOP)
    case = Case(
        id="c",
        principal="shop_analyst",
        ir=parse_ir("revenue during all_time limit 10"),
        sql="select sum(o.amount) as value from orders o join refunds r on r.order_id = o.id "
        "limit 10",
    )
    checks = {w.check for w in checker.check(case).witnesses}
    assert not checks & {"fanout_join", "inner_join_drops_rows", "tenant_rows_not_contained"}
    # with schema.sql the same rules judge (the guard is the schema, not the rule)
    saas = Checker.open("support_saas")
    fan = Case(
        id="f",
        principal="acme_finance_admin",
        ir=parse_ir("gross_revenue during last_month limit 10"),
        sql="select sum(i.gross_amount_cents) as value from invoices i "
        "join support_tickets t on t.account_id = i.account_id "
        "where i.tenant_id = 'acme' and t.tenant_id = 'acme' "
        "and i.invoice_date >= date '2026-05-01' and i.invoice_date < date '2026-06-01' limit 10",
    )
    assert "fanout_join" in {w.check for w in saas.check(fan).witnesses}


def test_scan_reports_key_and_rls_checks_as_unknown_without_schema_sql(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop", shop)
    result = run("scan", "--config", str(shop / "policystrata.yaml"), "--db", "none")
    assert result.exit_code in (0, 1), result.output
    assert "unknown without schema.sql" in " ".join(result.stderr.split())
    import xml.etree.ElementTree as ET

    junit = ET.parse(shop / "out" / "junit.xml").getroot()
    skipped = [
        tc.get("name", "") for tc in junit.iter("testcase") if tc.find("skipped") is not None
    ]
    assert any("fanout_join" in n for n in skipped)
    assert any("tenant_rows_not_contained" in n for n in skipped)


def test_init_domain_copy_without_schema_sql_checks_from_the_cli(tmp_path: Path) -> None:
    d = domain_copy(tmp_path, schema_sql=None, seed_sql=None)
    result = run(
        "check",
        "--domain-path",
        str(d),
        "--principal",
        "acme_analyst",
        "--ir",
        "ticket_count by region during last_month limit 100",
        "--sql",
        "select count(*) as value from support_tickets limit 100",
    )
    assert result.exit_code in (0, 1), result.output  # checked, never a load error
    assert "error:" not in result.stderr


# ---- migration-style schema.sql ----


def test_migration_schema_loads_with_notes_and_uses_what_parses() -> None:
    d = load_domain(MIGRATIONS)
    notes = [str(w) for w in d.warnings]
    assert any("table 'invoices' is referenced but never created here" in n for n in notes)
    assert any("calls auth.uid(), defined outside this script" in n for n in notes)
    # the function the migration defines itself is not a platform function
    assert not any("teams_of_current_user" in n for n in notes)
    assert all(n.startswith("schema.sql:") for n in notes)
    f = preds(MIGRATIONS)
    assert ("invoices",) in f["table_partial"] and ("invoice_notes",) not in f["table_partial"]
    assert ("invoices",) in f["rls_enabled"] and ("invoice_notes",) in f["rls_enabled"]
    assert ("invoices", "team_id") in f["tenant_column"]
    assert ("invoice_notes", "invoice_id", "invoices", "id") in f["fk"]  # a key to a partial table
    assert ("invoices", "paid_at", "timestamptz") in f["table_column"]  # what the ALTER adds
    assert ("payment_links", "invoicing_app", "select") in f["table_grant"]
    assert ("invoices", "Invoices by team", "authenticated") in f["rls_policy_role"]
    assert ("schema.sql",) in f["schema_known"]


def test_a_do_block_creating_a_role_parses() -> None:
    info = parse_schema(
        "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN\n"
        "    CREATE ROLE app LOGIN PASSWORD 'app';\n  END IF;\nEND\n$$;\n"
        "CREATE TABLE t (id int PRIMARY KEY);\n"
    )
    assert list(info.tables) == ["t"] and info.notes == []


def test_migration_style_notes_do_not_hide_typos_in_a_complete_schema() -> None:
    """A near-identical name of a table the script creates is still called out."""
    info = parse_schema(
        "CREATE TABLE accounts (id int PRIMARY KEY);\n"
        "ALTER TABLE acounts ENABLE ROW LEVEL SECURITY;\n"
    )
    [note] = info.notes
    assert str(note).startswith("schema.sql:2:") and "did you mean 'accounts'" in str(note)


def test_policy_reference_to_an_unmentioned_table_in_a_migration_is_a_warning(
    tmp_path: Path,
) -> None:
    d = tmp_path / "m"
    shutil.copytree(MIGRATIONS, d)
    text = (d / "policy.yaml").read_text().replace("table: payment_links", "table: payouts")
    (d / "policy.yaml").write_text(text)
    dom = load_domain(d)
    assert any(w.key == "metrics.linked_amount.table" for w in dom.warnings)


def test_migration_domain_checks_from_the_cli() -> None:
    result = run(
        "check",
        "--domain-path",
        str(MIGRATIONS),
        "--principal",
        "team_member",
        "--ir",
        "linked_amount during all_time limit 10",
        "--sql",
        "select sum(p.amount) as value from payment_links p limit 10",
        "--db",
        "none",
    )
    assert result.exit_code in (0, 1), result.output
    assert "warning: schema.sql:" in result.stderr


# ---- ClickHouse DDL ----


def test_clickhouse_schema_loads_and_its_row_policy_is_noted() -> None:
    d = load_domain(ANALYTICS)
    assert set(d.schema.tables) == {"workspaces", "clicks"}
    [note] = d.warnings
    assert "CREATE ROW POLICY" in str(note) and str(note).startswith("schema.sql:")
