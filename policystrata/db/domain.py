"""A domain loaded into a real database: what ``--db`` gives the commands.

>>> with domain_databases("none", domain) as dbs:     # doctest: +SKIP
...     dbs is None                                    # --db none: no real rows
True
>>> with domain_databases("auto", domain) as dbs:     # doctest: +SKIP
...     dbs.base, dbs.for_ddl(rewritten_schema)         # schema.sql, and a fault's DDL variant
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from policystrata.db.server import (
    ENV_DATABASE_URL,
    DatabaseUnavailable,
    DbChoice,
    find_bindir,
    resolve_db,
)
from policystrata.db.server import database as resolve_database
from policystrata.errors import StrataError

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


class NoDatabase(DatabaseUnavailable):
    """``--db auto`` found no server to start when one was first needed (said once on stderr):
    the run goes on without real-database evidence, as if there were no binaries."""


class DatabaseSetupFailed(StrataError):
    """The server or the domain's database could not be set up (a schema that does not load):
    a problem of the run, not of one record."""


class LazyDatabase:
    """The domain's database, set up when it is first needed: a run whose SQL is all refused by
    the gate (or that has no SQL) never starts a server. Behaves as the
    :class:`~policystrata.db.session.Database` it becomes."""

    def __init__(self, spec: str, domain: Domain, *, log_statements: bool = False) -> None:
        self._spec = spec
        self._domain = domain
        self._log_statements = log_statements
        self._choice: DbChoice | None = None
        self._db: Database | None = None
        self._failed: str | None = None

    @property
    def started(self) -> bool:
        return self._db is not None

    def _real(self) -> Database:
        if self._db is not None:
            return self._db
        if self._failed is not None:
            raise NoDatabase(self._failed)
        try:
            self._choice = resolve_db(self._spec, log_statements=self._log_statements)
        except DatabaseUnavailable as exc:
            raise DatabaseSetupFailed(str(exc)) from None
        if self._choice.server is None:
            self._failed = self._choice.reason
            raise NoDatabase(self._failed)
        from policystrata.db.session import Cluster

        schema, seed = domain_sql(self._domain)
        try:
            self._db = Cluster(self._choice.server).fresh_database(schema, seed)
        except StrataError as exc:
            self.close()
            raise DatabaseSetupFailed(str(exc)) from None
        return self._db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def close(self) -> None:
        db, choice = self._db, self._choice
        self._db = self._choice = None
        if db is not None:
            db.close()
            with contextlib.suppress(Exception):
                db.drop()
        if choice is not None:
            choice.close()


@contextlib.contextmanager
def domain_database_for(
    spec: str | None, domain: Domain, *, log_statements: bool = False
) -> Iterator[Database | None]:
    """``--db`` (auto, none or a DSN) for one run: the domain's database, set up when it is
    first needed (a :class:`LazyDatabase`), or None when running without one (``none``,
    ``auto`` without server binaries: said once on stderr, or a domain without schema.sql to
    load); everything is cleaned up afterwards (a throwaway server is stopped)."""
    if "schema" not in domain.sources:
        yield None
        return
    spec = spec or os.environ.get(ENV_DATABASE_URL) or "auto"
    if spec == "none":
        yield None
        return
    if spec == "auto" and find_bindir() is None:
        resolve_db(spec)  # says why, once
        yield None
        return
    lazy = LazyDatabase(spec, domain, log_statements=log_statements)
    try:
        yield lazy  # type: ignore[misc]
    finally:
        lazy.close()
