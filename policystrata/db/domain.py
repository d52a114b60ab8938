"""A domain loaded into a real database: what ``--db`` gives the commands.

>>> with domain_databases("none", domain) as dbs:     # doctest: +SKIP
...     dbs is None                                    # --db none: no real rows
True
>>> with domain_databases("auto", domain) as dbs:     # doctest: +SKIP
...     dbs.base, dbs.for_ddl(rewritten_schema)         # schema.sql, and a fault's DDL variant
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from policystrata.db.server import database as resolve_database

if TYPE_CHECKING:  # psycopg loads only when a server is really used
    from policystrata.db.session import Cluster, Database
    from policystrata.model import Domain


def domain_sql(domain: Domain) -> tuple[str, str]:
    """The domain's schema.sql and seed.sql texts (seed is optional)."""
    schema = domain.sources["schema"].read_text(encoding="utf-8")
    seed_path = domain.path / "seed.sql"
    seed = seed_path.read_text(encoding="utf-8") if seed_path.is_file() else ""
    return schema, seed


def domain_database(cluster: Cluster, domain: Domain, schema_sql: str | None = None) -> Database:
    """A fresh database with the domain's schema (or a rewritten ``schema_sql``) and seed,
    cloned from a template built once per distinct schema text."""
    schema, seed = domain_sql(domain)
    return cluster.database(schema_sql if schema_sql is not None else schema, seed)


class DomainDatabases:
    """The domain's database, plus one fresh database per distinct DDL variant (a fault that
    rewrites RLS), each cloned from a template built once per schema text."""

    def __init__(self, cluster: Cluster, domain: Domain) -> None:
        self.cluster = cluster
        self.domain = domain
        self.schema, self.seed = domain_sql(domain)
        self.base = cluster.database(self.schema, self.seed)
        self.base.cache_results = True  # ours alone, and only ever read
        self._variants: dict[str, Database] = {}

    def for_ddl(self, ddl: str | None) -> Database:
        """The database whose DDL is ``ddl`` (None or the schema text itself: the base)."""
        if ddl is None or ddl == self.schema:
            return self.base
        if ddl not in self._variants:
            db = self.cluster.database(ddl, self.seed)
            db.cache_results = True
            self._variants[ddl] = db
        return self._variants[ddl]

    def close(self) -> None:
        for db in [self.base, *self._variants.values()]:
            db.close()
            with contextlib.suppress(Exception):
                db.drop()
        with contextlib.suppress(Exception):
            self.cluster.drop_templates()


@contextlib.contextmanager
def domain_databases(
    spec: str | None, domain: Domain, *, log_statements: bool = False
) -> Iterator[DomainDatabases | None]:
    """Resolve ``--db`` and yield the domain's databases (None when running without one, or
    when the domain has no schema.sql to load)."""
    if "schema" not in domain.sources:
        yield None
        return
    with resolve_database(spec, log_statements=log_statements) as choice:
        if choice.server is None:
            yield None
            return
        from policystrata.db.session import Cluster

        dbs = DomainDatabases(Cluster(choice.server), domain)
        try:
            yield dbs
        finally:
            dbs.close()


@contextlib.contextmanager
def domain_database_for(
    spec: str | None, domain: Domain, *, log_statements: bool = False
) -> Iterator[Database | None]:
    """Resolve ``--db`` (auto, none or a DSN), load the domain, yield its database (or None when
    running without one, or when the domain has no schema.sql to load), and clean everything
    up afterwards (a throwaway server is stopped)."""
    if "schema" not in domain.sources:
        yield None
        return
    with resolve_database(spec, log_statements=log_statements) as choice:
        if choice.server is None:
            yield None
            return
        from policystrata.db.session import Cluster

        cluster = Cluster(choice.server)
        db = domain_database(cluster, domain)
        try:
            yield db
        finally:
            db.close()
            with contextlib.suppress(Exception):
                db.drop()
            with contextlib.suppress(Exception):
                cluster.drop_templates()
