"""Real-row evidence: canonical vs layer SQL, cross-tenant visibility, containment."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from policystrata.db.evidence import collect_evidence, tenant_output_columns
from policystrata.db.server import Server
from policystrata.db.session import Database
from policystrata.paths import domains_dir
from tests.test_db_session import SCHEMA, SEED


def test_tenant_output_columns_follow_aliases() -> None:
    sql = "SELECT i.tenant_id AS owner, i.id, sum(i.amount) AS s FROM items i GROUP BY 1, 2"
    assert tenant_output_columns(sql, ["owner", "id", "s"], ["tenant_id"]) == ["owner"]
    assert tenant_output_columns("SELECT count(*) AS n FROM items", ["n"], ["tenant_id"]) == []
    derived = "SELECT y.k FROM (SELECT i.tenant_id AS k FROM items i) y"
    assert tenant_output_columns(derived, ["k"], ["tenant_id"]) == ["k"]
    computed = "SELECT count(tenant_id) AS n FROM items"
    assert tenant_output_columns(computed, ["n"], ["tenant_id"]) == []


@pytest.mark.postgres
def test_canonical_vs_dropped_tenant_predicate(make_db: Callable[..., Database]) -> None:
    db = make_db(SCHEMA, SEED)
    canonical = "SELECT sum(amount) AS total FROM items WHERE tenant_id = 'acme'"
    layer = "SELECT tenant_id, sum(amount) AS total FROM items GROUP BY tenant_id"
    ev = collect_evidence(db, canonical, layer, "acme")
    assert ev["level"] == "real_db"
    assert ev["canonical"]["rows"] == [["30.50"]]
    assert ev["layer"]["rows"] == [["acme", "30.50"]]
    assert ev["cross_tenant"]["visible"] is False
    assert ev["containment"]["contained"] is True  # RLS removed the beta group
    assert ev["containment"]["rows_removed"] == [["beta", "13.25"]]
    json.dumps(ev)  # JSON-friendly


@pytest.mark.postgres
def test_cross_tenant_rows_are_reported(make_db: Callable[..., Database]) -> None:
    schema = SCHEMA.replace(
        "USING (tenant_id = current_setting('app.tenant_id', true))",
        "USING (old_owner = current_setting('app.tenant_id', true))",
    )
    db = make_db(schema, SEED)
    ev = collect_evidence(db, None, "SELECT id, tenant_id AS t FROM items", "acme")
    assert ev["cross_tenant"]["visible"] is True
    assert ev["cross_tenant"]["foreign_tenants"] == ["beta"]
    assert ev["cross_tenant"]["rows"] == [[4, "beta"]]


@pytest.mark.postgres
def test_refused_sql_is_recorded_not_run(make_db: Callable[..., Database]) -> None:
    db = make_db(SCHEMA, SEED)
    ev = collect_evidence(
        db,
        "SELECT count(*) FROM items",
        "SELECT set_config('app.tenant_id', 'beta', true), count(*) FROM items",
        "acme",
    )
    assert "refused" in ev["layer"]
    assert "containment" not in ev
    assert ev["canonical"]["rows"] == [[2]]


@pytest.mark.postgres
def test_support_saas_fan_out_doubles_the_sum(make_db: Callable[..., Database]) -> None:
    d = domains_dir() / "support_saas"
    if not (d / "seed.sql").is_file():
        pytest.skip("support_saas domain not present")
    db = make_db((d / "schema.sql").read_text(), (d / "seed.sql").read_text())
    canonical = (
        "SELECT sum(i.net_amount_cents) AS revenue FROM invoices i "
        "JOIN subscriptions s ON s.id = i.subscription_id "
        "JOIN accounts a ON a.id = s.account_id WHERE a.tenant_id = 'acme'"
    )
    fanout = (
        "SELECT sum(i.net_amount_cents) AS revenue FROM invoices i "
        "JOIN subscriptions s ON s.id = i.subscription_id "
        "JOIN accounts a ON a.id = s.account_id "
        "JOIN support_tickets t ON t.account_id = a.id WHERE a.tenant_id = 'acme'"
    )
    ev = collect_evidence(db, canonical, fanout, "acme")
    [[base]], [[fanned]] = ev["canonical"]["rows"], ev["layer"]["rows"]
    assert int(fanned) > int(base) > 0  # sum(bigint) is numeric: Decimal -> text
    assert ev["values_match"] is False
    assert ev["containment"]["contained"] is False


@pytest.mark.postgres
def test_evidence_never_executes_a_trace_that_sets_the_tenant(
    make_db: Callable[..., Database], pg_server: Server
) -> None:
    log = pg_server.statement_log
    if log is None:
        pytest.skip("statement log only available on the throwaway server")
    db = make_db(SCHEMA, SEED)
    marker = f"m{uuid.uuid4().hex}"
    for layer in (
        f"SELECT set_config('app.tenant_id', 'beta', true) AS {marker}, count(*) FROM items",
        f"SELECT pg_sleep(5) AS {marker}",
        f'SELECT U&"pg\\005fsleep"(5) AS {marker}',
        f"SELECT ts_stat('select 1') AS {marker}",
    ):
        ev = collect_evidence(db, None, layer, "acme")  # the project's own guard
        assert "refused" in ev["layer"]
    assert marker not in log.read_text(errors="replace")


@pytest.mark.postgres
def test_denied_and_stopped_queries_become_not_executed_facts(
    make_db: Callable[..., Database],
) -> None:
    """A query the server denies (no grant) or stops (a runaway join) is a db_not_executed
    fact with its kind, never rows and never a silent pass."""
    from policystrata.lower.rows import rows_facts

    schema = SCHEMA + "CREATE TABLE secret (id int PRIMARY KEY);\n"  # no grant to strata_app
    db = make_db(schema, SEED)
    denied = collect_evidence(db, None, "SELECT id FROM secret", "acme")
    assert denied["layer"]["error"]["kind"] == "denied"
    runaway = "SELECT count(*) FROM " + ", ".join(f"items i{n}" for n in range(24))
    stopped = collect_evidence(db, None, runaway, "acme", timeout_ms=200)
    assert stopped["layer"]["error"]["kind"] in ("timeout", "limit")
    facts = rows_facts("c1", denied, {}).to_lines() + rows_facts("c2", stopped, {}).to_lines()
    assert 'db_not_executed("c1", "denied", "[42501] permission denied for table secret")' in facts
    assert 'db_not_executed("c2", ' in facts
    assert "db_evidence" not in facts
