"""Domain databases and the per-case transaction recipe.

Roles (cluster-wide, created by :meth:`Cluster.ensure_roles`):

- ``strata_owner``: LOGIN, NOSUPERUSER, **BYPASSRLS**. Owns every domain database and runs
  ``schema.sql`` and ``seed.sql``, so it owns the tables. Under ``FORCE ROW LEVEL SECURITY`` an
  owner is subject to RLS too; seeding works because the owner bypasses RLS (BYPASSRLS). With an
  external server whose admin cannot grant BYPASSRLS, seed as a superuser instead.
- ``strata_app``: LOGIN, NOSUPERUSER, NOBYPASSRLS, NOINHERIT, owns nothing; it has only the grants
  ``schema.sql`` gives it. Every check runs as this role, connected as itself (so ``RESET ROLE``
  has nothing to return to).

Each case runs in its own transaction (see :meth:`Database.run_app`; everything before the query
goes to the server in one round trip)::

    BEGIN TRANSACTION READ ONLY;                         -- read-only before any query
    SET LOCAL ROLE strata_app;
    SELECT set_config('app.tenant_id', 'acme', true);    -- transaction-local, never session
    SET LOCAL statement_timeout = 2000;
    <the vetted query>;
    ROLLBACK;                                            -- always

:meth:`Database.run_owner` runs the same SQL as the owner (RLS bypassed) in the same kind of
rolled-back read-only transaction, for comparison (containment evidence).

A fresh database per domain or fault variant is cloned from a template database
(``CREATE DATABASE ... TEMPLATE``), which is built once per distinct (schema, seed) text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as pgsql

from policystrata.db.server import DatabaseUnavailable, Server
from policystrata.db.vet import UnvettedSQL, VettedSQL
from policystrata.errors import StrataError
from policystrata.facts import FactSet

if TYPE_CHECKING:
    from policystrata.db.catalog import Gap

APP_ROLE = "strata_app"
OWNER_ROLE = "strata_owner"
TENANT_SETTING = "app.tenant_id"
DEFAULT_TIMEOUT_MS = 2000


class QueryFailed(StrataError):
    """The server rejected or cancelled a vetted query (timeout, read-only, permission...)."""

    def __init__(self, sqlstate: str | None, message: str) -> None:
        self.sqlstate = sqlstate
        self.message = message
        super().__init__(f"[{sqlstate}] {message}")

    def to_json(self) -> dict[str, Any]:
        return {"sqlstate": self.sqlstate, "message": self.message}


# --------------------------------------------------------------------------- results


def to_json_value(value: Any) -> Any:
    """A JSON-friendly, deterministic form of a result cell.

    ``Decimal`` -> ``str`` (always, exact), dates/times -> ISO text, ``bytes`` -> hex, UUID ->
    text; ``int``/``float``/``bool``/``str``/``None`` stay as they are.

    >>> [to_json_value(v) for v in (decimal.Decimal("12.50"), dt.date(2026, 5, 1), 3, None)]
    ['12.50', '2026-05-01', 3, None]
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in sorted(value.items())}
    return str(value)


def _cell_sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    return (3, str(value))


def sort_rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows sorted deterministically across mixed types (None first, numbers, then text)."""
    return sorted((list(r) for r in rows), key=lambda r: tuple(_cell_sort_key(v) for v in r))


@dataclass
class QueryResult:
    """Rows of one vetted query (cells already JSON-friendly, rows sorted)."""

    columns: list[str]
    rows: list[list[Any]]
    role: str
    tenant: str | None
    elapsed_ms: float = 0.0

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "tenant": self.tenant,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "row_count": self.row_count,
        }


# --------------------------------------------------------------------------- cluster


def _ident(name: str) -> pgsql.Identifier:
    return pgsql.Identifier(name)


_COUNTER = itertools.count(1)


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_COUNTER)}"


@dataclass
class Cluster:
    """Roles, templates and databases on one server (throwaway or external).

    >>> cluster = Cluster(server)                                   # doctest: +SKIP
    >>> db = cluster.database(schema_sql, seed_sql)                 # doctest: +SKIP
    >>> db.run_app(vet_sql("SELECT count(*) FROM accounts"), "acme").rows  # doctest: +SKIP
    [[3]]
    """

    server: Server
    app_role: str = APP_ROLE
    owner_role: str = OWNER_ROLE
    app_dsn: str | None = None
    """Optional DSN template for the app role (libpq string); dbname is replaced per database."""
    _templates: dict[str, str] = field(default_factory=dict, repr=False)
    _built: set[str] = field(default_factory=set, repr=False)
    _roles_ready: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit connection as the server's admin user."""
        try:
            return psycopg.connect(self.server.dsn(dbname), autocommit=True)
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {e}") from e

    def ensure_roles(self) -> None:
        """Create ``strata_owner`` (BYPASSRLS) and ``strata_app`` (no privileges) if missing."""
        if self._roles_ready:
            return
        with self.admin() as conn:
            existing = {
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                    ([self.app_role, self.owner_role],),
                )
            }
            if self.owner_role not in existing:
                conn.execute(
                    pgsql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB"
                    ).format(_ident(self.owner_role))
                )
            if self.app_role not in existing:
                conn.execute(
                    pgsql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB "
                        "NOINHERIT"
                    ).format(_ident(self.app_role))
                )
            # The admin must be able to SET ROLE to the owner to load schema.sql as it.
            conn.execute(pgsql.SQL("GRANT {} TO CURRENT_USER").format(_ident(self.owner_role)))
        self._roles_ready = True

    # -- templates and databases
    def template(self, schema_sql: str, seed_sql: str = "") -> str:
        """The name of the template database for this (schema, seed) text; built on first use."""
        key = hashlib.sha256((schema_sql + "\0" + seed_sql).encode()).hexdigest()[:16]
        with self._lock:
            name = self._templates.get(key)
            if name is None:
                name = f"strata_tpl_{key}"
                self._build_template(name, schema_sql, seed_sql)
                self._templates[key] = name
            return name

    def _build_template(self, name: str, schema_sql: str, seed_sql: str) -> None:
        """Build the template, or reuse it: the name is a digest of the (schema, seed) text and
        a database is flagged IS_TEMPLATE only after a complete load, so a flagged one with this
        name (left by another cluster on the same server) has exactly this content."""
        self.ensure_roles()
        with self.admin() as conn:
            row = conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if row is not None and row[0]:
                return  # reused, not built: drop_templates() leaves it to its builder
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(_ident(name)))
            conn.execute(
                pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    _ident(name), _ident(self.owner_role)
                )
            )
        try:
            self.load(name, schema_sql, seed_sql)
            with self.admin() as conn:
                conn.execute(
                    pgsql.SQL(
                        "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
                    ).format(_ident(name))
                )
            self._built.add(name)
        except BaseException:
            with contextlib.suppress(Exception), self.admin() as conn:
                conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(_ident(name)))
            raise

    def load(self, dbname: str, schema_sql: str, seed_sql: str = "") -> None:
        """Run schema.sql then seed.sql in ``dbname`` as the owner role, in one transaction."""
        with self.admin(dbname) as conn:
            try:
                with conn.transaction():
                    conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(_ident(self.owner_role)))
                    conn.execute(schema_sql.encode())
                    if seed_sql.strip():
                        conn.execute(seed_sql.encode())
            except psycopg.Error as e:
                diag = e.diag
                raise StrataError(
                    f"loading the domain into {dbname} failed: {diag.message_primary or e}"
                    + (
                        f" (statement position {diag.statement_position})"
                        if diag.statement_position
                        else ""
                    )
                ) from e

    def clone(self, template: str, name: str | None = None) -> Database:
        """``CREATE DATABASE <name> TEMPLATE <template>``: a fresh copy in milliseconds."""
        name = name or _unique_name("strata_db")
        stmt = pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY FILE_COPY").format(
            _ident(name), _ident(self.owner_role), _ident(template)
        )
        with self.admin() as conn:
            for attempt in range(20):
                try:
                    conn.execute(stmt)
                    break
                except psycopg.errors.ObjectInUse:
                    if attempt == 19:
                        raise
                    time.sleep(0.05)
        return Database(self, name)

    def database(self, schema_sql: str, seed_sql: str = "", name: str | None = None) -> Database:
        """A fresh database holding ``schema_sql`` + ``seed_sql`` (template built once)."""
        return self.clone(self.template(schema_sql, seed_sql), name)

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_ident(name)))

    def drop_templates(self) -> None:
        """Drop the templates this cluster built (reused ones belong to their builder)."""
        with self._lock:
            names = [n for n in self._templates.values() if n in self._built]
            self._templates.clear()
            self._built.difference_update(names)
        with self.admin() as conn:
            for name in names:
                conn.execute(
                    pgsql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(_ident(name))
                )
                conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(_ident(name)))

    def app_conninfo(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        if self.app_dsn:
            return make_conninfo(self.app_dsn, dbname=dbname)
        return self.server.dsn(dbname, user=self.app_role)


# --------------------------------------------------------------------------- database


@dataclass
class Database:
    """One domain database: the app-role and owner-context runners and its connections."""

    cluster: Cluster
    name: str
    tenant_setting: str = TENANT_SETTING
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    _app: psycopg.Connection[Any] | None = field(default=None, repr=False)
    _owner: psycopg.Connection[Any] | None = field(default=None, repr=False)
    _app_checked: bool = field(default=False, repr=False)
    cache_results: bool = False
    """Reuse the result of an identical vetted query (same SQL, tenant, params, role): only
    for a database nobody changes while it is used (every query runs read-only and is rolled
    back), such as the per-run databases of :class:`~policystrata.db.domain.DomainDatabases`."""
    _results: dict[tuple[Any, ...], QueryResult] = field(default_factory=dict, repr=False)

    # -- connections
    def _app_conn(self) -> psycopg.Connection[Any]:
        if self._app is None or self._app.closed:
            self._app = psycopg.connect(
                self.cluster.app_conninfo(self.name),
                autocommit=True,
                cursor_factory=psycopg.RawCursor,
            )
            self._app_checked = False
        if not self._app_checked:
            row = self._app.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if row is None or row[0] or row[1]:
                self.close()
                raise StrataError(
                    f"refusing to run checks: the app role {self.cluster.app_role!r} is "
                    "superuser or BYPASSRLS, so RLS would not apply"
                )
            self._app_checked = True
        return self._app

    def _owner_conn(self) -> psycopg.Connection[Any]:
        if self._owner is None or self._owner.closed:
            self._owner = psycopg.connect(
                self.cluster.server.dsn(self.name),
                autocommit=True,
                cursor_factory=psycopg.RawCursor,
            )
        return self._owner

    def close(self) -> None:
        for conn in (self._app, self._owner):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._app = self._owner = None

    def drop(self) -> None:
        self.close()
        self.cluster.drop(self.name)

    def __enter__(self) -> Database:
        return self

    def rls_facts(self) -> FactSet:
        """The live rls_* / table_grant facts of this database (see :mod:`.catalog`)."""
        from policystrata.db.catalog import live_rls_facts

        with self.cluster.admin(self.name) as conn:
            return live_rls_facts(conn)

    def gaps(self, tenant_columns: Mapping[str, str] | None = None) -> list[Gap]:
        """Containment gaps of this database for the app role (see :mod:`.catalog`)."""
        from policystrata.db.catalog import containment_gaps

        with self.cluster.admin(self.name) as conn:
            return containment_gaps(
                conn,
                app_role=self.cluster.app_role,
                tenant_columns=tenant_columns,
                tenant_setting=self.tenant_setting,
            )

    def __exit__(self, *exc: object) -> None:
        self.drop()

    # -- the recipe
    @contextlib.contextmanager
    def transaction(
        self, tenant: str | None, *, owner: bool = False, timeout_ms: int | None = None
    ) -> Iterator[psycopg.Connection[Any]]:
        """The per-case transaction; yields the connection, always rolls back.

        Exposed for tests of the recipe itself; checks go through :meth:`run_app` /
        :meth:`run_owner`, which only accept vetted SQL.
        """
        conn = self._owner_conn() if owner else self._app_conn()
        role = self.cluster.owner_role if owner else self.cluster.app_role
        ms = int(timeout_ms if timeout_ms is not None else self.timeout_ms)
        # the whole prelude in one round trip (a parameterless multi-statement simple query)
        prelude = pgsql.SQL(
            "BEGIN TRANSACTION READ ONLY; SET LOCAL ROLE {}; "
            "SELECT set_config({}, {}, true); SET LOCAL statement_timeout = {}"
        ).format(
            _ident(role),
            pgsql.Literal(self.tenant_setting),
            pgsql.Literal(tenant or ""),
            pgsql.SQL(str(ms)),  # an int
        )
        try:
            conn.execute(prelude.as_string(conn))
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")

    def _run(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        owner: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        if not isinstance(vetted, VettedSQL):
            raise UnvettedSQL("only SQL returned by vet_sql() is executed")
        key: tuple[Any, ...] | None = None
        if self.cache_results:
            key = (owner, vetted.text, tenant, repr(list(params)), timeout_ms)
            hit = self._results.get(key)
            if hit is not None:
                return _copy_result(hit)
        result = self._execute(vetted, tenant, params, owner, timeout_ms)
        if key is not None and result.row_count <= _CACHE_MAX_ROWS:
            if len(self._results) >= _CACHE_SIZE:
                self._results.pop(next(iter(self._results)))  # oldest first
            self._results[key] = _copy_result(result)
        return result

    def _execute(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        owner: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        role = self.cluster.owner_role if owner else self.cluster.app_role
        t0 = time.perf_counter()
        with self.transaction(tenant, owner=owner, timeout_ms=timeout_ms) as conn:
            try:
                cur = conn.execute(vetted.text, list(params), prepare=False)
                columns = [d.name for d in cur.description or []]
                rows = [[to_json_value(v) for v in r] for r in cur.fetchall()]
            except psycopg.Error as e:
                raise QueryFailed(e.sqlstate, (e.diag.message_primary or str(e))) from e
        return QueryResult(
            columns=columns,
            rows=sort_rows(rows),
            role=role,
            tenant=tenant,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        )

    def run_app(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any] = (),
        *,
        timeout_ms: int | None = None,
    ) -> QueryResult:
        """Run vetted SQL as ``strata_app`` under ``tenant`` (RLS applies). ``$1``-style params."""
        return self._run(vetted, tenant, params, owner=False, timeout_ms=timeout_ms)

    def run_owner(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any] = (),
        *,
        timeout_ms: int | None = None,
    ) -> QueryResult:
        """Run vetted SQL as the owner (BYPASSRLS) in a rolled-back read-only transaction."""
        return self._run(vetted, tenant, params, owner=True, timeout_ms=timeout_ms)


_CACHE_SIZE = 512
_CACHE_MAX_ROWS = 1000


def _copy_result(res: QueryResult) -> QueryResult:
    return QueryResult(
        columns=list(res.columns),
        rows=[list(r) for r in res.rows],
        role=res.role,
        tenant=res.tenant,
        elapsed_ms=res.elapsed_ms,
    )


def fault_database(cluster: Cluster, schema_sql: str, seed_sql: str = "") -> Database:
    """A fresh database for a fault variant's rewritten DDL (one template per variant text).

    The stack's fault operators (``db_rls_old_ownership_field``, ``app_deny_missing_db_policy``)
    produce rewritten schema text; this loads it with the same seed and the same roles.
    """
    return cluster.database(schema_sql, seed_sql)
