"""Domain databases, roles and the per-case transaction recipe against a real PostgreSQL."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from policystrata.db.server import Server
from policystrata.db.session import Cluster, Database, QueryFailed
from policystrata.db.vet import UnvettedSQL, VettedSQL, vet_sql
from policystrata.errors import StrataError

SCHEMA = """
CREATE TABLE tenants (id text PRIMARY KEY);
CREATE TABLE items (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    old_owner text,
    amount numeric(10, 2) NOT NULL
);
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items FORCE ROW LEVEL SECURITY;
CREATE POLICY items_isolation ON items
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON items TO strata_app;
"""

SEED = """
INSERT INTO tenants VALUES ('acme'), ('beta');
INSERT INTO items VALUES
    (1, 'acme', 'acme', 10.50), (2, 'acme', 'beta', 20.00),
    (3, 'beta', 'beta', 5.25), (4, 'beta', 'acme', 7.00), (5, 'beta', 'beta', 1.00);
"""


RELATIONS = {"tenants", "items"}


def vet(text: str) -> VettedSQL:
    """The gate: the read-only guard and the execution allow-list over this schema."""
    return vet_sql(text, relations=RELATIONS)


@pytest.fixture
def db(make_db: Callable[..., Database]) -> Database:
    return make_db(SCHEMA, SEED)


# ---------------------------------------------------------------- vetting (no database)


def test_the_gate_refuses_session_changes_sleeps_and_unknown_relations() -> None:
    for text in (
        "SELECT set_config('app.tenant_id', 'beta', true)",
        "SELECT pg_sleep(1)",
        "SELECT 1; DELETE FROM items",
        "RESET ROLE",
        'SELECT U&"pg\\005fsleep"(1)',
        "SELECT ts_stat('select 1')",
        "SELECT * FROM pg_roles",
    ):
        with pytest.raises(UnvettedSQL):
            vet(text)
    assert vet("SELECT 'set_config(' AS s").text  # inside a string literal
    assert vet("WITH x AS (SELECT 1 AS a) SELECT * FROM x;").text
    assert vet("SELECT count(*) FROM items").text


def test_without_the_guard_nothing_is_vetted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "policystrata.lower.sql", None)
    monkeypatch.setattr("policystrata.db.vet._GUARDED", {})
    with pytest.raises(UnvettedSQL, match=r"guard .* unavailable"):
        vet_sql("SELECT 1", relations=RELATIONS)


def test_vetted_sql_cannot_be_forged() -> None:
    with pytest.raises(UnvettedSQL):
        VettedSQL("SELECT 1", "forged")


# ---------------------------------------------------------------- roles and the recipe


@pytest.mark.postgres
def test_app_role_is_not_privileged(db: Database) -> None:
    with db.transaction("acme") as conn:
        row = conn.execute(
            "SELECT current_user, session_user, r.rolsuper, r.rolbypassrls "
            "FROM pg_roles r WHERE r.rolname = current_user"
        ).fetchone()
    assert row == ("strata_app", "strata_app", False, False)


@pytest.mark.postgres
def test_rls_hides_other_tenants_rows(db: Database) -> None:
    res = db.run_app(vet("SELECT id, tenant_id, amount FROM items"), "acme")
    assert res.rows == [[1, "acme", "10.50"], [2, "acme", "20.00"]]
    assert res.role == "strata_app"
    beta = db.run_app(vet("SELECT count(*) AS n FROM items"), "beta")
    assert beta.rows == [[3]]


@pytest.mark.postgres
def test_no_tenant_sees_nothing(db: Database) -> None:
    assert db.run_app(vet("SELECT * FROM items"), None).row_count == 0


@pytest.mark.postgres
def test_tenant_setting_is_transaction_local(db: Database) -> None:
    with db.transaction("acme") as conn:
        assert conn.execute("SELECT current_setting('app.tenant_id', true)").fetchone() == ("acme",)
    # Same connection, after the rollback: the setting and the role are gone.
    conn = db._app_conn()
    assert conn.execute("SELECT current_setting('app.tenant_id', true)").fetchone() in (
        (None,),
        ("",),
    )
    # what is left is the role's own default (ALTER ROLE ... SET), not the transaction's
    assert conn.execute("SELECT current_setting('statement_timeout')").fetchone() == ("2s",)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.postgres
def test_read_only_transaction_rejects_a_write(db: Database) -> None:
    with db.transaction("acme") as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("UPDATE items SET amount = 0")
    with (
        db.transaction("acme", bypass=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("DELETE FROM items")
    assert db.run_bypass(vet("SELECT count(*) FROM items"), "acme").rows == [[5]]
    with db.transaction("acme", bypass=True) as conn:  # and SELECT is all it was granted
        privileges = conn.execute(
            "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE']) p "
            "WHERE has_table_privilege('items', p)"
        ).fetchall()
    assert privileges == [("SELECT",)]


@pytest.mark.postgres
def test_statement_timeout_fires(db: Database) -> None:
    # a runaway join on the allow-list: 5^12 rows with RLS bypassed
    sql = vet("SELECT count(*) FROM " + ", ".join(f"items i{n}" for n in range(12)))
    t0 = time.perf_counter()
    with pytest.raises(QueryFailed) as info:
        db.run_bypass(sql, "acme", timeout_ms=100)
    assert info.value.sqlstate == "57014"
    assert time.perf_counter() - t0 < 10
    assert db.run_app(vet("SELECT 1 AS one"), "acme").rows == [[1]]  # connection still usable


@pytest.mark.postgres
def test_unvetted_sql_never_reaches_the_server(db: Database, pg_server: Server) -> None:
    log = pg_server.statement_log
    if log is None:
        pytest.skip("statement log only available on the throwaway server")
    marker = f"m{uuid.uuid4().hex}"
    bad = [
        f"SELECT pg_sleep(0.01) AS {marker}",
        f"SELECT set_config('app.tenant_id', 'beta', true) AS {marker}",
        f"SELECT 1 AS {marker}; SELECT * FROM items",
        f'SELECT U&"pg\\005fsleep"(0.01) AS {marker}',
        f"SELECT ts_stat('select 1') AS {marker}",
        f"SELECT rolname AS {marker} FROM pg_roles",
    ]
    for text in bad:
        with pytest.raises(UnvettedSQL):
            db.run_app(vet(text), "acme")
    with pytest.raises(UnvettedSQL):
        db.run_app(f"SELECT 1 AS {marker}", "acme")  # type: ignore[arg-type]
    ok = f"ok{uuid.uuid4().hex}"
    db.run_app(vet(f"SELECT 1 AS {ok}"), "acme")
    text = log.read_text(errors="replace")
    assert ok in text  # the log does record what runs
    assert marker not in text


@pytest.mark.postgres
def test_parameters_are_bound_not_interpolated(db: Database) -> None:
    res = db.run_app(vet("SELECT id FROM items WHERE amount > $1"), "beta", ["6"])
    assert res.rows == [[4]]


@pytest.mark.postgres
def test_bypass_role_bypasses_rls_for_comparison(db: Database) -> None:
    sql = vet("SELECT tenant_id, count(*) AS n FROM items GROUP BY tenant_id")
    bypassed = db.run_bypass(sql, "acme")
    app = db.run_app(sql, "acme")
    assert bypassed.rows == [["acme", 2], ["beta", 3]]
    assert app.rows == [["acme", 2]]
    assert bypassed.role == "strata_bypass"


@pytest.mark.postgres
def test_each_database_is_a_fresh_copy(
    make_db: Callable[..., Database], pg_cluster: Cluster
) -> None:
    a = make_db(SCHEMA, SEED)
    with pg_cluster.admin(a.name) as conn:
        conn.execute("DELETE FROM items")
    b = make_db(SCHEMA, SEED)
    assert a.name != b.name
    assert b.run_bypass(vet("SELECT count(*) FROM items"), None).rows == [[5]]
    assert a.run_bypass(vet("SELECT count(*) FROM items"), None).rows == [[0]]


@pytest.mark.postgres
def test_template_clone_is_fast(pg_cluster: Cluster) -> None:
    template = pg_cluster.template(SCHEMA, SEED)
    t0 = time.perf_counter()
    db = pg_cluster.clone(template)
    elapsed = time.perf_counter() - t0
    db.drop()
    assert elapsed < 5.0


@pytest.mark.postgres
def test_app_role_refuses_to_run_when_privileged(db: Database, pg_cluster: Cluster) -> None:
    with pg_cluster.admin() as conn:
        conn.execute("ALTER ROLE strata_app BYPASSRLS")
    try:
        db.close()
        with pytest.raises(StrataError, match="BYPASSRLS"):
            db.run_app(vet("SELECT 1"), "acme")
    finally:
        with pg_cluster.admin() as conn:
            conn.execute("ALTER ROLE strata_app NOBYPASSRLS")


@pytest.mark.postgres
def test_second_cluster_reuses_a_complete_template(pg_server: Server) -> None:
    """Two clusters on one server build the same (schema, seed): the second reuses the first's
    content-addressed template instead of failing to drop it, and leaves it to its builder."""
    schema = "CREATE TABLE reuse_probe (id int primary key);"
    first, second = Cluster(pg_server), Cluster(pg_server)
    name = first.template(schema, "INSERT INTO reuse_probe VALUES (1);")
    assert second.template(schema, "INSERT INTO reuse_probe VALUES (1);") == name
    db = second.clone(name)
    try:
        assert db.run_bypass(db.vet("SELECT count(*) FROM reuse_probe"), None).rows == [[1]]
    finally:
        db.drop()
    second.drop_templates()  # not its own: the template survives
    first.clone(name).drop()
    first.drop_templates()
