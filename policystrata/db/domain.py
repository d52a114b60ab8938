"""A domain loaded into a real database: what ``--db`` gives ``check``, ``run`` and ``scan``.

:class:`DomainDatabases` is the one way a command gets databases: the server (a throwaway one
for ``--db auto``, the user's for a DSN) is started, and each database loaded, only when a case
first needs it — a run whose SQL the gate refuses entirely never starts a server. The base
database holds the domain's schema.sql and seed.sql (or the texts a scan config names); a case
whose DDL in force differs (a fault that rewrites row level security) gets a database of its
own, one per distinct DDL text. Databases are made by
:meth:`policystrata.db.session.Cluster.database` only. Each database's sessions set the settings
its DDL's row security policies read (:meth:`DomainDatabases.use_tenant_settings`: the checker
gives the rules' ``tenant_setting`` atoms for a DDL text).

>>> with domain_databases("none", domain) as dbs:     # doctest: +SKIP
...     dbs is None                                    # --db none: no real rows
True
>>> with domain_databases("auto", domain) as dbs:     # doctest: +SKIP
...     dbs.for_ddl(None), dbs.for_ddl(rewritten_schema)   # schema.sql, and a fault's variant
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from policystrata.db.server import (
    ENV_DATABASE_URL,
    DatabaseUnavailable,
    DbChoice,
    find_bindir,
    resolve_db,
)
from policystrata.errors import StrataError

if TYPE_CHECKING:  # psycopg loads only when a server is really used
    from policystrata.db.session import Cluster, Database
    from policystrata.model import Domain


def domain_sql(domain: Domain) -> tuple[str, str]:
    """The domain's schema.sql and seed.sql texts (seed is optional; no schema: empty)."""
    schema_path = domain.sources.get("schema")
    schema = schema_path.read_text(encoding="utf-8") if schema_path is not None else ""
    seed_path = domain.path / "seed.sql"
    seed = seed_path.read_text(encoding="utf-8") if seed_path.is_file() else ""
    return schema, seed


@contextlib.contextmanager
def clickhouse_databases(
    spec: str,
    domain: Domain,
    schema_sql: str | None,
    seed_sql: str | None,
    sources: tuple[str, str],
) -> Iterator[object]:
    """A ClickHouse domain's databases: chdb for ``--db auto`` (None, said once, when chdb is
    not installed); a DSN is refused (ClickHouse domains run on the embedded engine)."""
    from policystrata.db.clickhouse import ClickHouseDatabases, chdb_available

    if spec != "auto" and not spec.startswith(("chdb", "clickhouse")):
        raise DatabaseSetupFailed(
            f"domain {domain.name} is a ClickHouse domain: its rows come from chdb "
            "(--db auto), not from a PostgreSQL DSN"
        )
    if not chdb_available():
        _say_once(
            "chdb is not installed: checks run without real ClickHouse rows "
            "(pip install 'policystrata[clickhouse]')"
        )
        yield None
        return
    dbs = ClickHouseDatabases(domain, schema_sql=schema_sql, seed_sql=seed_sql, sources=sources)
    try:
        yield dbs
    finally:
        dbs.close()


def _say_once(message: str) -> None:
    from policystrata.db.server import _warn_once

    _warn_once(message)


class NoDatabase(DatabaseUnavailable):
    """``--db auto`` found no server to start when one was first needed (said once on stderr):
    the run goes on without real-database evidence, as if there were no binaries."""


class DatabaseSetupFailed(StrataError):
    """The server or the domain's database could not be set up (a schema that does not load):
    a problem of the run, not of one record."""


class DomainDatabases:
    """The domain's databases on one server, set up when first needed (see the module
    docstring). ``spec`` is ``auto`` or a DSN; ``schema_sql``/``seed_sql`` replace the domain's
    texts (``sources`` names them in load errors); ``app_dsn`` is the app role's own DSN on a
    user's server."""

    def __init__(
        self,
        spec: str,
        domain: Domain,
        *,
        schema_sql: str | None = None,
        seed_sql: str | None = None,
        sources: tuple[str, str] = ("schema.sql", "seed.sql"),
        app_dsn: str | None = None,
        log_statements: bool = False,
    ) -> None:
        schema, seed = domain_sql(domain)
        self.schema = schema if schema_sql is None else schema_sql
        self.seed = seed if seed_sql is None else seed_sql
        self.sources = sources
        self._spec = spec
        self._app_dsn = app_dsn
        self._log_statements = log_statements
        self._choice: DbChoice | None = None
        self._cluster: Cluster | None = None
        self._failed: str | None = None
        self._dbs: dict[str | None, Database] = {}
        self._fixed: Database | None = None
        self._settings: Callable[[str | None], Sequence[str]] | None = None
        self._domain = domain
        self._parent: DomainDatabases | None = None  # reseeded(): the server is the parent's
        self._children: list[DomainDatabases] = []

    def reseeded(self, seed_sql: str) -> DomainDatabases:
        """The same DDL texts loaded with other rows (``seed_sql``) on this one's server (started
        when first needed); its databases are dropped when this one is closed."""
        out = DomainDatabases(self._spec, self._domain, schema_sql=self.schema, seed_sql=seed_sql)
        out._parent = self
        out._settings = self._settings
        self._children.append(out)
        return out

    def use_tenant_settings(self, settings: Callable[[str | None], Sequence[str]]) -> None:
        """Where the settings a database's sessions set to the tenant come from: ``settings``
        maps a DDL text (None: the domain's schema.sql) to the settings its row security
        policies compare a tenant column with (:meth:`policystrata.check.Checker.
        tenant_settings`, read from the rules). Applies to the databases made so far and to
        every later one."""
        self._settings = settings
        for key, db in self._dbs.items():
            db.tenant_settings = self._tenant_settings(key)

    def _tenant_settings(self, key: str | None) -> tuple[str, ...]:
        if self._settings is None:
            return ()
        if self._fixed is not None:  # a database made elsewhere: the domain's schema
            return tuple(self._settings(None))
        return tuple(self._settings(self.schema if key is None else key))

    @classmethod
    def of(cls, database: Database, domain: Domain) -> DomainDatabases:
        """One database made elsewhere (a test's), used for every case whatever its DDL."""
        out = cls("", domain)
        out._cluster = database.cluster
        out._dbs[None] = database
        out._fixed = database
        return out

    @property
    def started(self) -> bool:
        """A database was set up (so there is real-row evidence to speak of)."""
        return bool(self._dbs)

    @property
    def mode(self) -> str:
        """``throwaway``, ``external`` or ``none`` (not started, or no server)."""
        return self._choice.mode if self._choice is not None else "none"

    @property
    def notes(self) -> list[str]:
        """What the server lacks or what loading mapped (each also said once on stderr)."""
        return list(self._cluster.notes) if self._cluster is not None else []

    @property
    def failure(self) -> str | None:
        """Why no database could be had, once that is known."""
        return self._failed

    def for_ddl(self, ddl: str | None) -> Database:
        """The database whose DDL is ``ddl`` (None or the schema text itself: the base one).
        Raises :class:`NoDatabase` when ``--db auto`` has no server to start and
        :class:`DatabaseSetupFailed` when the server or the schema fails."""
        if self._fixed is not None:
            return self._fixed
        key = None if ddl is None or ddl == self.schema else ddl
        db = self._dbs.get(key)
        if db is None:
            cluster = self._server()
            try:
                db = cluster.database(
                    self.schema if key is None else key,
                    self.seed,
                    sources=self.sources,
                    tenant_settings=self._tenant_settings(key),
                )
            except StrataError as exc:
                raise DatabaseSetupFailed(str(exc)) from None
            db.cache_results = True  # ours alone, and only ever read
            self._dbs[key] = db
        return db

    def _server(self) -> Cluster:
        if self._cluster is not None:
            return self._cluster
        if self._parent is not None:
            return self._parent._server()
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

        self._cluster = Cluster(self._choice.server, app_dsn=self._app_dsn)
        return self._cluster

    def close(self) -> None:
        """Drop every database made here and stop a throwaway server. Idempotent."""
        if self._fixed is not None:
            return
        for child in self._children:
            child.close()
        dbs, self._dbs = list(self._dbs.values()), {}
        for db in dbs:
            db.close()
            with contextlib.suppress(Exception):
                db.drop()
        if self._parent is not None:  # the server and its templates are the parent's
            return
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.drop_templates()
        if self._choice is not None:
            self._choice.close()
        self._choice = self._cluster = None


@contextlib.contextmanager
def domain_databases(
    spec: str | None,
    domain: Domain,
    *,
    schema_sql: str | None = None,
    seed_sql: str | None = None,
    sources: tuple[str, str] = ("schema.sql", "seed.sql"),
    app_dsn: str | None = None,
    log_statements: bool = False,
) -> Iterator[DomainDatabases | None]:
    """``--db`` (``auto``, ``none`` or a DSN; default ``$STRATA_DATABASE_URL``, else ``auto``)
    for one command: the domain's :class:`DomainDatabases`, or None when running without a
    database (``none``; ``auto`` without server binaries, said once on stderr; no schema to
    load). Everything is dropped and a throwaway server stopped afterwards."""
    has_schema = schema_sql is not None or "schema" in domain.sources
    given = spec
    spec = spec or os.environ.get(ENV_DATABASE_URL) or "auto"
    if not has_schema or spec == "none":
        yield None
        return
    if domain.dialect == "clickhouse":  # embedded ClickHouse (chdb), in this process
        # $STRATA_DATABASE_URL names a PostgreSQL server: not for a ClickHouse domain
        with clickhouse_databases(given or "auto", domain, schema_sql, seed_sql, sources) as ch:
            yield ch  # type: ignore[misc]
        return
    if spec == "auto" and find_bindir() is None:
        resolve_db(spec)  # says why, once
        yield None
        return
    dbs = DomainDatabases(
        spec,
        domain,
        schema_sql=schema_sql,
        seed_sql=seed_sql,
        sources=sources,
        app_dsn=app_dsn,
        log_statements=log_statements,
    )
    try:
        yield dbs
    finally:
        dbs.close()
