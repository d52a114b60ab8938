"""Shared pytest fixtures.

PostgreSQL (mark such tests ``@pytest.mark.postgres``):

- ``pg_server`` (session): a throwaway server started once per test session (statement logging
  on), or the server at ``$STRATA_DATABASE_URL`` when set. Without PostgreSQL the test is skipped
  with the reason, except under ``CI=true`` where it fails.
- ``pg_cluster`` (session): roles and template databases on that server.
- ``make_db`` (function): ``make_db(schema_sql, seed_sql="")`` returns a fresh database cloned
  from a template of that (schema, seed) text; dropped after the test. Its sessions set
  ``tenant_settings`` (default :data:`TEST_TENANT_SETTINGS`, the setting the test schemas'
  policies read) to the tenant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from policystrata.db.server import (
    ENV_DATABASE_URL,
    DatabaseUnavailable,
    ExternalServer,
    Server,
    ThrowawayServer,
    find_bindir,
)
from policystrata.db.session import Cluster, Database

#: The session setting the tests' own schemas (and support_saas's) compare the tenant column with.
#: A database made for a domain gets the settings the rules derive from its DDL instead.
TEST_TENANT_SETTINGS = ("app.tenant_id",)


def _no_postgres(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and PostgreSQL is unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    url = os.environ.get(ENV_DATABASE_URL)
    if url:
        yield ExternalServer(url)
        return
    if find_bindir() is None:
        _no_postgres(
            "no server binaries (install postgresql, or set PG_BINDIR / STRATA_DATABASE_URL)"
        )
    try:
        server = ThrowawayServer(log_statements=True).start()
    except DatabaseUnavailable as e:
        _no_postgres(str(e))
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_cluster(pg_server: Server) -> Iterator[Cluster]:
    cluster = Cluster(pg_server)
    try:
        cluster.ensure_roles()
    except DatabaseUnavailable as e:
        _no_postgres(str(e))
    yield cluster
    cluster.drop_templates()


@pytest.fixture
def make_db(pg_cluster: Cluster) -> Iterator[Callable[..., Database]]:
    made: list[Database] = []

    def make(
        schema_sql: str, seed_sql: str = "", tenant_settings: tuple[str, ...] = TEST_TENANT_SETTINGS
    ) -> Database:
        db = pg_cluster.database(schema_sql, seed_sql, tenant_settings=tenant_settings)
        made.append(db)
        return db

    yield make
    for db in made:
        db.drop()
