"""RLS facts from the live catalog: agreement with the static schema.sql parse, and gaps."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from policystrata.db.catalog import (
    as_case_facts,
    compare_rls,
    containment_gaps,
    live_rls_facts,
    rls_subset,
)
from policystrata.db.session import Cluster, Database
from policystrata.lower.schema import parse_schema
from policystrata.paths import domains_dir
from tests.conftest import TEST_TENANT_SETTINGS
from tests.test_db_session import SCHEMA, SEED

pytestmark = pytest.mark.postgres

BUILTIN_DOMAINS = sorted(p.name for p in domains_dir().iterdir() if (p / "schema.sql").is_file())


def _live(cluster: Cluster, db: Database) -> object:
    with cluster.admin(db.name) as conn:
        return live_rls_facts(conn)


def _gaps(cluster: Cluster, db: Database, **kw: object) -> list[tuple[str, str, str]]:
    with cluster.admin(db.name) as conn:
        return [(g.kind, g.table, g.policy) for g in containment_gaps(conn, **kw)]  # type: ignore[arg-type]


def test_live_facts_of_a_small_schema(
    make_db: Callable[..., Database], pg_cluster: Cluster
) -> None:
    db = make_db(SCHEMA, SEED)
    with pg_cluster.admin(db.name) as conn:
        facts = live_rls_facts(conn)
    assert facts.to_lines().splitlines() == [
        'rls_enabled("items")',
        'rls_forced("items")',
        'rls_policy("items", "items_isolation", "all", true)',
        'rls_policy_pred("items", "items_isolation", "using", "tenant_id", "=", "setting", '
        '"app.tenant_id", "guaranteed")',
        'rls_policy_role("items", "items_isolation", "public")',
        # the USING expression read as the query it filters (policystrata.lower.sql.policy_query)
        'rls_query_pred("items", "items_isolation", "s0", "items", "tenant_id", "=", "setting", '
        '"app.tenant_id", "guaranteed")',
        'rls_query_reads("items", "items_isolation", "s0", "items", "items")',
        'table_grant("items", "strata_app", "select")',
    ]
    case = as_case_facts("c1", facts)
    assert 'db_rls_forced("c1", "items")' in case.to_lines()


def test_static_and_live_agree_on_a_richer_schema(
    make_db: Callable[..., Database], pg_cluster: Cluster
) -> None:
    schema = (
        SCHEMA
        + """
CREATE TABLE notes (id int PRIMARY KEY, tenant_id text NOT NULL, region text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_read ON notes AS RESTRICTIVE FOR SELECT TO strata_app
    USING (tenant_id = current_setting('app.tenant_id', true) AND region IN ('emea', 'na'));
CREATE POLICY notes_write ON notes FOR INSERT TO strata_app, strata_owner
    WITH CHECK (tenant_id = current_setting('app.tenant_id'));
CREATE POLICY notes_open ON notes FOR UPDATE USING (true);
GRANT SELECT, INSERT ON notes TO strata_app;
GRANT SELECT ON items TO PUBLIC;
"""
    )
    db = make_db(schema, SEED)
    static = parse_schema(schema).facts
    live = _live(pg_cluster, db)
    assert compare_rls(static, live) == {"only_static": [], "only_live": []}  # type: ignore[arg-type]
    assert len(rls_subset(static)) > 15


@pytest.mark.parametrize("domain", BUILTIN_DOMAINS)
def test_static_and_live_rls_facts_agree_for_builtin_domains(
    domain: str, make_db: Callable[..., Database], pg_cluster: Cluster
) -> None:
    d = domains_dir() / domain
    schema = (d / "schema.sql").read_text()
    seed = (d / "seed.sql").read_text() if (d / "seed.sql").is_file() else ""
    db = make_db(schema, seed)
    static = parse_schema(schema, source=f"{domain}/schema.sql").facts
    live = _live(pg_cluster, db)
    assert compare_rls(static, live) == {"only_static": [], "only_live": []}  # type: ignore[arg-type]
    assert rls_subset(static).by_pred("rls_policy")
    assert _gaps(pg_cluster, db) == []


def test_gaps_in_a_broken_schema(make_db: Callable[..., Database], pg_cluster: Cluster) -> None:
    schema = """
CREATE TABLE a (id int PRIMARY KEY, tenant_id text, old_owner text);
CREATE TABLE b (id int PRIMARY KEY, tenant_id text);
CREATE TABLE c (id int PRIMARY KEY, tenant_id text);
CREATE TABLE d (id int PRIMARY KEY, tenant_id text);
CREATE TABLE e (id int PRIMARY KEY, tenant_id text);
ALTER TABLE a ENABLE ROW LEVEL SECURITY;
CREATE POLICY a_old ON a USING (old_owner = current_setting('app.tenant_id', true));
ALTER TABLE b ENABLE ROW LEVEL SECURITY;
ALTER TABLE d ENABLE ROW LEVEL SECURITY;
CREATE POLICY d_all ON d USING (true);
ALTER TABLE e ENABLE ROW LEVEL SECURITY;
CREATE POLICY e_ok ON e USING (tenant_id = current_setting('app.tenant_id', true));
CREATE VIEW v AS SELECT * FROM e;
CREATE VIEW w WITH (security_invoker = true) AS SELECT * FROM e;
GRANT SELECT ON a, b, c, d, v, w TO strata_app;
"""
    db = make_db(schema)
    with pg_cluster.admin(db.name) as conn:  # a superuser may give the app role a table
        conn.execute("ALTER TABLE e OWNER TO strata_app")
    assert _gaps(pg_cluster, db) == [
        ("app_role_owner_without_force", "e", ""),
        ("policy_always_true", "d", "d_all"),
        ("policy_non_tenant_column", "a", "a_old"),
        ("rls_disabled", "c", ""),
        ("rls_no_policy", "b", ""),
        ("view_without_security_invoker", "v", ""),
    ]


def test_privileged_app_role_is_a_gap(
    make_db: Callable[..., Database], pg_cluster: Cluster
) -> None:
    db = make_db(SCHEMA, SEED)
    with pg_cluster.admin() as conn:
        conn.execute("ALTER ROLE strata_app BYPASSRLS")
    try:
        assert ("app_role_bypassrls", "", "") in _gaps(pg_cluster, db)
    finally:
        with pg_cluster.admin() as conn:
            conn.execute("ALTER ROLE strata_app NOBYPASSRLS")
    assert _gaps(pg_cluster, db) == []


def _support_saas() -> tuple[str, str]:
    d = domains_dir() / "support_saas"
    if not (d / "schema.sql").is_file():
        pytest.skip("support_saas domain not present")
    return (d / "schema.sql").read_text(), (d / "seed.sql").read_text()


def test_fault_old_ownership_field_static_and_dynamic(pg_cluster: Cluster) -> None:
    schema, seed = _support_saas()
    faulty, n = re.subn(r"(ON accounts\s+USING \()tenant_id", r"\1legacy_tenant_id", schema)
    assert n == 1
    with pg_cluster.database(faulty, seed, tenant_settings=TEST_TENANT_SETTINGS) as db:
        assert _gaps(pg_cluster, db) == [
            ("policy_non_tenant_column", "accounts", "tenant_isolation_accounts")
        ]
        res = db.run_app(db.vet("SELECT id, tenant_id FROM accounts"), "acme")
        assert [5, "beta"] in res.rows  # another tenant's row is visible (legacy owner acme)
        assert [2, "acme"] not in res.rows  # and an own row is hidden (legacy owner beta)


def test_fault_missing_policy_denies_the_app(pg_cluster: Cluster) -> None:
    schema, seed = _support_saas()
    # agents carries its own tenant column (the catalog's gap report reads tenant columns)
    faulty, n = re.subn(r"CREATE POLICY tenant_isolation_agents[^;]*;", "", schema)
    assert n == 1
    with pg_cluster.database(faulty, seed, tenant_settings=TEST_TENANT_SETTINGS) as db:
        assert [(g.kind, g.table) for g in db.gaps()] == [("rls_no_policy", "agents")]
        assert "agents" not in {f.args[0] for f in db.rls_facts().by_pred("rls_policy")}
        sql = db.vet("SELECT count(*) AS n FROM agents")
        assert db.run_app(sql, "acme").rows == [[0]]
        assert db.run_bypass(sql, "acme").rows[0][0] > 0
