"""Least privilege by login: PolicyStrata's roles, and a domain's schema.sql loaded as the
unprivileged owner with its role statements mapped onto ours (policystrata/db/ddl.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from policystrata.db.ddl import prepare_script
from policystrata.db.server import Server
from policystrata.db.session import SERVER_ROLES, Cluster, role_password
from policystrata.errors import InputError, StrataError
from tests.conftest import TEST_TENANT_SETTINGS

# The published line's shape (../shared/COMPAT.md §7): the schema creates its app role in a DO
# block (re-ALTERing it when it exists) and grants to it.
PUBLISHED = """
DROP TABLE IF EXISTS notes;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'policystrata_app') THEN
    CREATE ROLE policystrata_app LOGIN PASSWORD 'policystrata_app';
  ELSE
    ALTER ROLE policystrata_app LOGIN PASSWORD 'policystrata_app';
  END IF;
EXCEPTION WHEN duplicate_object THEN
  RAISE NOTICE 'policystrata_app exists';
END
$$;
CREATE TABLE notes (id int PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_isolation ON notes TO policystrata_app
    USING (tenant_id = current_setting('app.tenant_id', true));
GRANT USAGE ON SCHEMA public TO policystrata_app;
GRANT SELECT ON notes TO policystrata_app;
"""
SEED = "INSERT INTO notes VALUES (1, 'acme', 'a'), (2, 'beta', 'b'), (3, 'acme', 'c');"


# ---------------------------------------------------------------- mapping (no database)


def test_published_role_setup_is_mapped_not_run() -> None:
    script = prepare_script(PUBLISHED, "schema.sql")
    assert "policystrata_app" not in script.text
    assert "CREATE ROLE" not in script.text.upper()
    assert "GRANT SELECT ON notes TO strata_app" in script.text
    assert "CREATE POLICY notes_isolation ON notes TO strata_app" in script.text
    assert script.relations == frozenset({"notes"})
    assert script.notes == [
        "schema.sql:3: DO block creating the app role policystrata_app not run "
        "(strata_app is used)",
        "schema.sql: policystrata_app is PolicyStrata's app role strata_app (lines 17, 19, 20)",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "CREATE ROLE reporting LOGIN;",
        "ALTER USER postgres PASSWORD 'x';",
        "DROP ROLE IF EXISTS strata_app, reporting;",
        "DO $$ BEGIN EXECUTE 'CREATE ROLE x SUPERUSER'; END $$;",
        "DO $$ BEGIN CREATE ROLE policystrata_app SUPERUSER; END $$;",
        "DO $$ BEGIN CREATE ROLE evil LOGIN; END $$;",
        "DO $$ BEGIN GRANT pg_read_server_files TO policystrata_app; END $$;",
        "DO $$ BEGIN SET ROLE postgres; PERFORM 1; END $$;",
    ],
)
def test_role_statements_that_cannot_be_mapped_are_refused_at_their_line(text: str) -> None:
    with pytest.raises(InputError) as info:
        prepare_script("CREATE TABLE t (a int);\n" + text, "schema.sql")
    assert info.value.file == "schema.sql" and info.value.line == 2


def test_a_do_block_without_role_statements_runs_as_the_owner() -> None:
    text = "DO $$ BEGIN PERFORM 1; END $$;"
    assert prepare_script(text, "schema.sql").text == text


# ---------------------------------------------------------------- on a real server


@pytest.mark.postgres
def test_our_roles_cannot_become_more(pg_cluster: Cluster) -> None:
    with pg_cluster.admin() as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin, "
            "ARRAY(SELECT s.rolname FROM pg_roles s WHERE s.rolname = ANY(%s) "
            "      AND pg_has_role(r.oid, s.oid, 'MEMBER')) "
            "FROM pg_roles r WHERE rolname IN ('strata_app', 'strata_bypass', 'strata_owner') "
            "ORDER BY rolname",
            (list(SERVER_ROLES),),
        ).fetchall()
    assert rows == [
        ("strata_app", False, False, False, False, True, []),
        ("strata_bypass", False, False, False, True, True, []),
        ("strata_owner", False, False, False, True, True, []),
    ]


@pytest.mark.postgres
def test_the_bypass_session_cannot_switch_to_the_superuser(
    make_db: object, pg_server: Server
) -> None:
    db = make_db(PUBLISHED, SEED)  # type: ignore[operator]
    for bypass in (False, True):
        with db.transaction("acme", bypass=bypass) as conn:
            for attack in ("SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(attack)
                conn.execute("ROLLBACK")
                conn.execute("BEGIN READ ONLY")
            conn.execute("RESET ROLE")  # nothing to return to: still itself
            user = conn.execute("SELECT current_user, session_user").fetchone()
            assert user == (("strata_bypass",) * 2 if bypass else ("strata_app",) * 2)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT pg_read_file('/etc/passwd')")


@pytest.mark.postgres
def test_published_schema_loads_as_the_owner_and_the_app_role_is_ours(
    make_db: object, pg_cluster: Cluster
) -> None:
    db = make_db(PUBLISHED, SEED)  # type: ignore[operator]
    assert db.relations == frozenset({"notes"})
    assert db.run_app(db.vet("SELECT id FROM notes"), "acme").rows == [[1], [3]]
    assert db.run_bypass(db.vet("SELECT count(*) FROM notes"), "acme").rows == [[3]]
    with pg_cluster.admin(db.name) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'policystrata_app'"
        ).fetchone() == (0,)
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'"
        ).fetchone()
    assert owner == ("strata_owner",)
    assert any("policystrata_app" in n for n in pg_cluster.notes)


@pytest.mark.postgres
def test_a_schema_that_reaches_for_the_host_fails_to_load(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    marker = Path("/tmp") / f"strata-marker-{uuid.uuid4().hex}"
    hostile = (
        f"CREATE TABLE t (a int);\nRESET ROLE;\nCOPY (SELECT 1) TO PROGRAM 'touch {marker}';\n"
    )
    with pytest.raises(StrataError, match=r"permission denied|must be superuser|privilege"):
        pg_cluster.database(hostile, "")
    assert not marker.exists()


@pytest.mark.postgres
def test_role_passwords_derive_from_the_admin_secret(pg_server: Server) -> None:
    """Two processes (or two --db strings) holding the same admin secret agree on the roles'
    passwords; nobody else can compute them."""
    from policystrata.db.server import ExternalServer

    external = ExternalServer(pg_server.dsn())
    for role in ("strata_app", "strata_bypass", "strata_owner"):
        assert role_password(external, role) == role_password(pg_server, role)
        assert role_password(pg_server, role) != pg_server.secret


@pytest.mark.postgres
def test_a_non_superuser_admin_gets_the_same_recipe_and_is_told_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--db with an administrator that has CREATEROLE and CREATEDB but is no superuser: the
    roles and logins are the same; no role can get BYPASSRLS, and that is said once."""
    from policystrata.db.server import ExternalServer, ThrowawayServer, find_bindir

    if find_bindir() is None:
        from tests.conftest import _no_postgres

        _no_postgres("no server binaries")
    schema = (
        "CREATE TABLE notes (id int PRIMARY KEY, tenant_id text NOT NULL);\n"
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n"
        "CREATE POLICY p ON notes USING (tenant_id = current_setting('app.tenant_id', true));\n"
        "GRANT SELECT ON notes TO policystrata_app;\n"
    )
    seed = "INSERT INTO notes VALUES (1, 'acme'), (2, 'beta');"
    with ThrowawayServer() as server, psycopg.connect(server.dsn(), autocommit=True) as su:
        su.execute("CREATE ROLE lesser LOGIN CREATEROLE CREATEDB PASSWORD 'lesser-pw'")
        external = ExternalServer(server.dsn(user="lesser", password="lesser-pw"))
        cluster = Cluster(external)
        db = cluster.database(schema, seed, tenant_settings=TEST_TENANT_SETTINGS)
        try:
            assert not cluster.bypass_available
            assert db.run_app(db.vet("SELECT id FROM notes"), "acme").rows == [[1]]
            from policystrata.db.evidence import collect_evidence

            ev = collect_evidence(db, None, "SELECT id FROM notes", "acme")
            assert ev["containment"] == {
                "checked": False,
                "reason": "the server has no BYPASSRLS role for the comparison",
            }
            attrs = su.execute(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
                "WHERE rolname LIKE 'strata_%' ORDER BY 1"
            ).fetchall()
            assert attrs == [("strata_app", False, False), ("strata_owner", False, False)]
        finally:
            db.drop()
    err = capsys.readouterr().err
    assert err.count("no role can have BYPASSRLS") == 1
