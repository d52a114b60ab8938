"""The session setting that carries the tenant is derived from the row security policies.

``tenant_setting(C, Name)`` (rules/database.dl) holds for a setting a policy in force compares a
tenant column with, directly or inside the policy's query (EXISTS on a parent). The checker reads
those atoms (:meth:`Checker.tenant_settings`) and the databases it is given set exactly them
(:class:`policystrata.db.domain.DomainDatabases`): one setting, several (each table's own), or
none (policies on ``current_user``: nothing a session can set, and nothing guards by tenant).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.case import Case
from policystrata.check import Checker, load_rules
from policystrata.db.domain import DomainDatabases
from policystrata.db.server import Server
from policystrata.engine import Program
from policystrata.model import load_domain
from policystrata.paths import domains_dir

SURFACES = (domains_dir() / "support_saas" / "surfaces.yaml").read_text(encoding="utf-8")
_PROGRAM: list[Program] = []


def program() -> Program:
    if not _PROGRAM:
        _PROGRAM.append(load_rules())
    return _PROGRAM[0]


def write_domain(root: Path, tables: list[tuple[str, str]]) -> Path:
    """A domain of tables ``(name, USING expression)``, each with its own tenant_id and a
    ``child_<name>`` scoped through it by EXISTS on the same expression."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    seed = []
    for name, using in tables:
        lines += [
            f"CREATE TABLE {name} (id integer PRIMARY KEY, tenant_id text NOT NULL, owner text);",
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;",
            f"CREATE POLICY {name}_iso ON {name} USING ({using});",
            f"CREATE TABLE child_{name} (id integer PRIMARY KEY, "
            f"parent_id integer NOT NULL REFERENCES {name} (id));",
            f"ALTER TABLE child_{name} ENABLE ROW LEVEL SECURITY;",
            f"CREATE POLICY child_{name}_iso ON child_{name} USING (EXISTS (SELECT 1 FROM "
            f"{name} p WHERE p.id = child_{name}.parent_id AND p.{using}));",
            f"GRANT SELECT ON {name}, child_{name} TO strata_app;",
        ]
        seed += [
            f"INSERT INTO {name} VALUES (1, 'acme', 'beta'), (2, 'beta', 'acme'), "
            "(3, 'acme', NULL);",
            f"INSERT INTO child_{name} VALUES (1, 1), (2, 2), (3, 3);",
        ]
    first = tables[0][0]
    (root / "schema.sql").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "seed.sql").write_text("\n".join(seed) + "\n", encoding="utf-8")
    (root / "surfaces.yaml").write_text(SURFACES, encoding="utf-8")
    (root / "policy.yaml").write_text(
        "version: v1\n"
        "as_of: 2026-06-01\n"
        "principals: {acme_user: {id: acme_user, role: r, tenant_ids: [acme]}}\n"
        "roles: {r: {allowed_metrics: [n], allowed_dimensions: [], "
        "allowed_time_ranges: [last_month], max_rows: 100, max_cost: 100}}\n"
        f"metrics: {{n: {{expression: count({first}.id), table: {first}, allowed_roles: [r]}}}}\n",
        encoding="utf-8",
    )
    return root


def checker_for(root: Path) -> Checker:
    return Checker(load_domain(root), program=program())


def checks(checker: Checker, sql: str) -> set[tuple[str, str]]:
    result = checker.check(Case(id="c", principal="acme_user", sql=sql))
    return {(w.check, str(w.key)) for w in result.witnesses}


def test_one_setting_several_settings_and_none(tmp_path: Path) -> None:
    one = checker_for(write_domain(tmp_path / "one", [("notes", on_setting("app.org"))]))
    assert one.tenant_settings() == ("app.org",)

    several = write_domain(
        tmp_path / "several",
        [("notes", on_setting("app.tenant_id")), ("tags", on_setting("policystrata.firm_id"))],
    )
    both = checker_for(several)
    assert both.tenant_settings() == ("app.tenant_id", "policystrata.firm_id")
    # each table is guarded by its own setting, its child through it
    assert checks(both, "select count(*) from notes where notes.tenant_id = 'acme'") == set()
    child = "select count(*) from child_tags c join tags t on t.id = c.parent_id"
    assert checks(both, f"{child} where t.tenant_id = 'acme'") == set()
    # trace SQL that reads the tenant from a setting the policies use is scoped to it...
    by_setting = f"{child} where t.tenant_id = current_setting('policystrata.firm_id', true)"
    assert checks(both, by_setting) == set()
    # ... and from a setting no policy reads, it is not
    unknown = f"{child} where t.tenant_id = current_setting('app.user_id', true)"
    assert ("tenant_scope_missing", "tags") in checks(both, unknown)

    # policies on current_user (nothing a session can set) or on a column that is not the
    # tenant column: no tenant setting, and no policy guards by tenant
    for using in ("tenant_id = current_user", "owner = current_setting('app.owner', true)"):
        root = write_domain(tmp_path / str(abs(hash(using))), [("notes", using)])
        none = checker_for(root)
        assert none.tenant_settings() == (), using
        found = checks(none, "select count(*) from notes where notes.tenant_id = 'acme'")
        assert ("tenant_rows_not_contained", "notes") in found, (using, found)


def on_setting(name: str) -> str:
    """The USING expression comparing the tenant column with setting ``name``."""
    return f"tenant_id = current_setting('{name}', true)"


NAMES = ("app.tenant_id", "app.org", "policystrata.firm_id", "request.jwt.claims.org")
USING = st.one_of(
    st.sampled_from(NAMES).map(on_setting),
    st.just("tenant_id = current_user"),
    st.sampled_from(NAMES).map(lambda n: f"owner = current_setting('{n}', true)"),
)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(usings=st.lists(USING, min_size=1, max_size=3))
def test_the_settings_are_those_compared_with_a_tenant_column(
    usings: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tables = [(f"t{i}", using) for i, using in enumerate(usings)]
    checker = checker_for(write_domain(tmp_path_factory.mktemp("shape"), tables))
    expected = sorted(
        {u.split("'")[1] for u in usings if u.startswith("tenant_id = current_setting")}
    )
    assert checker.tenant_settings() == tuple(expected), usings


@pytest.mark.postgres
def test_the_databases_set_every_setting_the_policies_read(
    pg_server: Server, tmp_path: Path
) -> None:
    root = write_domain(
        tmp_path / "several",
        [("notes", on_setting("app.tenant_id")), ("tags", on_setting("policystrata.firm_id"))],
    )
    checker = checker_for(root)
    dbs = DomainDatabases(pg_server.dsn("postgres"), checker.domain)
    try:
        checker.attach_databases(dbs)
        db = dbs.for_ddl(None)
        assert db.tenant_settings == ("app.tenant_id", "policystrata.firm_id")
        for table in ("notes", "tags", "child_tags"):
            rows = db.run_app(db.vet(f"SELECT count(*) FROM {table}"), "acme").rows
            assert rows == [[2]], table  # acme's own rows, under each table's own setting
        # a fault's DDL variant gets the settings of its own policies
        variant = (root / "schema.sql").read_text().replace("'policystrata.firm_id'", "'app.x'")
        assert dbs.for_ddl(variant).tenant_settings == ("app.tenant_id", "app.x")
        # the real rows of a case come from a session on those settings
        checker.check(Case(id="c", principal="acme_user", sql="select count(*) from tags"))
        assert checker.context.evidence["layer"]["rows"] == [[2]]
    finally:
        dbs.close()
