"""Domain databases, PolicyStrata's roles, and the per-case transaction recipe.

Roles (cluster-wide, created by :meth:`Cluster.ensure_roles` on the administrator's connection,
which creates roles and databases and runs no domain or trace text):

- ``strata_owner``: LOGIN, NOSUPERUSER, NOCREATEROLE, NOCREATEDB, BYPASSRLS, INHERIT (of
  ``pg_database_owner`` only: CREATE in its databases' ``public`` schema), not a member of
  ``pg_execute_server_program`` / ``pg_read_server_files`` / ``pg_write_server_files``. It owns
  every domain database and *logs in* to run ``schema.sql`` and ``seed.sql`` (role statements
  mapped onto ours, see :mod:`policystrata.db.ddl`), so it owns the tables. BYPASSRLS lets it
  seed tables under ``FORCE ROW LEVEL SECURITY``. It never sees trace SQL.
- ``strata_app``: LOGIN, NOSUPERUSER, NOBYPASSRLS, NOINHERIT, owns nothing; only the grants
  ``schema.sql`` gives it. Every check logs in as this role (so ``RESET ROLE`` / ``SET ROLE``
  has nothing to return to).
- ``strata_bypass``: LOGIN, NOSUPERUSER, BYPASSRLS, NOINHERIT, SELECT on the domain's tables and
  nothing else. The comparison "RLS bypassed" logs in as this role.

Each role logs in with its own password, generated per run (per server, per process). Both
trace-SQL roles get per-role limits (``ALTER ROLE ... SET``: ``statement_timeout``,
``lock_timeout``, ``idle_in_transaction_session_timeout``, ``temp_file_limit``, ``work_mem``,
``default_transaction_read_only``), and every run checks, before its first query, that the
session's role is what it must be.

Each case runs in its own transaction (see :meth:`Database.run_app`; the prelude goes to the
server in one round trip, the query as a prepared statement of the extended query protocol, so
one statement is all the server will take whatever the parser thought)::

    BEGIN TRANSACTION READ ONLY;                         -- read-only before any query
    SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 1000;
    SET LOCAL idle_in_transaction_session_timeout = 10000; SET LOCAL work_mem = '16MB';
    SELECT set_config('app.tenant_id', 'acme', true);    -- each tenant setting; transaction-local
    <the vetted query: Parse / Bind / Execute>;
    ROLLBACK;                                            -- always

:meth:`Database.run_bypass` runs the same SQL as ``strata_bypass`` (RLS bypassed) in the same
kind of rolled-back read-only transaction, for comparison (containment evidence).

The settings set to the tenant are :attr:`Database.tenant_settings`: the settings the row
security policies of the database's DDL compare a tenant column with, as the rules derive them
(``tenant_setting`` in ``rules/database.dl``; :class:`policystrata.db.domain.DomainDatabases`
asks the checker for them). ``app.tenant_id`` above is support_saas's; finance_saas's policies
read ``policystrata.firm_id``; a DDL whose policies read several settings gets each set to the
tenant, and one whose policies read none gets none (what its policies compare instead, such as
``current_user`` or a function, is nothing a session can set).

A fresh database per domain or fault variant is cloned from a template database
(``CREATE DATABASE ... TEMPLATE``), which is built once per distinct (schema, seed) text.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import hmac
import itertools
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as pgsql

from policystrata.db.server import DatabaseUnavailable, Server, _warn_once
from policystrata.db.vet import UnvettedSQL, VettedSQL
from policystrata.errors import StrataError
from policystrata.facts import FactSet

if TYPE_CHECKING:
    from policystrata.db.catalog import Gap

APP_ROLE = "strata_app"
OWNER_ROLE = "strata_owner"
BYPASS_ROLE = "strata_bypass"
DEFAULT_TIMEOUT_MS = 2000
LOCK_TIMEOUT_MS = 1000
IDLE_TIMEOUT_MS = 10000
WORK_MEM = "16MB"
TEMP_FILE_LIMIT = "64MB"
LOAD_TIMEOUT_MS = 120000

#: Predefined roles that reach the server's OS (programs, files): none of ours is a member.
SERVER_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


class QueryFailed(StrataError):
    """The server rejected or cancelled a vetted query (timeout, read-only, permission...)."""

    def __init__(self, sqlstate: str | None, message: str) -> None:
        self.sqlstate = sqlstate
        self.message = message
        super().__init__(f"[{sqlstate}] {message}")

    @property
    def kind(self) -> str:
        """``timeout`` (cancelled: statement or lock timeout), ``limit`` (a resource limit of
        the sandbox: temp_file_limit, memory, ...), ``denied`` (insufficient privilege) or
        ``error``."""
        if self.sqlstate in ("57014", "55P03"):
            return "timeout"
        if self.sqlstate and self.sqlstate.startswith(("53", "54")):
            return "limit"
        if self.sqlstate == "42501":
            return "denied"
        return "error"

    def to_json(self) -> dict[str, Any]:
        return {"sqlstate": self.sqlstate, "message": self.message, "kind": self.kind}


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


class QueryRunner:
    """What every database backend shares: the vetting gate, the app and bypass entry points,
    and the bounded result cache. A backend implements :meth:`_execute` (run one vetted query
    under ``tenant``, as the app role or bypassing row security) and may refuse parameters in
    :meth:`_check_params`."""

    cache_results: bool
    _results: dict[tuple[Any, ...], QueryResult]

    def _execute(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        bypass: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        raise NotImplementedError

    def _check_params(self, params: Sequence[Any]) -> None:
        """Raise :class:`QueryFailed` when this backend cannot bind ``params``."""

    def _run(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        bypass: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        if not isinstance(vetted, VettedSQL):
            raise UnvettedSQL("only SQL returned by vet_sql() is executed")
        self._check_params(params)
        key: tuple[Any, ...] | None = None
        if self.cache_results:
            key = (bypass, vetted.text, tenant, repr(list(params)), timeout_ms)
            hit = self._results.get(key)
            if hit is not None:
                return _copy_result(hit)
        result = self._execute(vetted, tenant, params, bypass, timeout_ms)
        if key is not None and result.row_count <= _CACHE_MAX_ROWS:
            if len(self._results) >= _CACHE_SIZE:
                self._results.pop(next(iter(self._results)))  # oldest first
            self._results[key] = _copy_result(result)
        return result

    def run_app(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any] = (),
        *,
        timeout_ms: int | None = None,
    ) -> QueryResult:
        """Run vetted SQL as the app role under ``tenant``: the row security of the DDL in
        force applies (PostgreSQL: ``strata_app``, ``$1``-style params; ClickHouse: the row
        policies as predicates)."""
        return self._run(vetted, tenant, params, bypass=False, timeout_ms=timeout_ms)

    def run_bypass(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any] = (),
        *,
        timeout_ms: int | None = None,
    ) -> QueryResult:
        """Run vetted SQL with row security bypassed (PostgreSQL: ``strata_bypass``, SELECT
        only, in a rolled-back read-only transaction), for comparison with the app run."""
        return self._run(vetted, tenant, params, bypass=True, timeout_ms=timeout_ms)


# --------------------------------------------------------------------------- cluster


def _ident(name: str) -> pgsql.Identifier:
    return pgsql.Identifier(name)


_COUNTER = itertools.count(1)


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_COUNTER)}"


_PASSWORDS: dict[tuple[str, str], str] = {}
_PASSWORDS_LOCK = threading.Lock()


def role_password(server: Server, role: str) -> str:
    """The password of one of our roles on this server: derived from the administrator's
    password when the connection string has one (HMAC-SHA256: every process holding that
    secret agrees, nobody without it can compute it), else random, once per process."""
    secret = server.secret
    if secret:
        return hmac.new(secret.encode(), f"strata-role:{role}".encode(), "sha256").hexdigest()
    key = (server.identity, role)
    with _PASSWORDS_LOCK:
        if key not in _PASSWORDS:
            _PASSWORDS[key] = secrets.token_urlsafe(24)
        return _PASSWORDS[key]


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802 / 7677), so
    ``CREATE ROLE ... PASSWORD '<verifier>'`` sets the password without sending it.

    >>> scram_verifier("pw", salt=b"0123456789abcdef")[:48]
    'SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$5ZYE'
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


@dataclass
class Cluster:
    """Roles, templates and databases on one server (throwaway or external).

    >>> cluster = Cluster(server)                                   # doctest: +SKIP
    >>> db = cluster.database(schema_sql, seed_sql)                 # doctest: +SKIP
    >>> db.run_app(db.vet("SELECT count(*) FROM accounts"), "acme").rows  # doctest: +SKIP
    [[3]]
    """

    server: Server
    app_role: str = APP_ROLE
    owner_role: str = OWNER_ROLE
    bypass_role: str = BYPASS_ROLE
    app_dsn: str | None = None
    """Optional DSN for the app role (libpq string); dbname is replaced per database."""
    notes: list[str] = field(default_factory=list)
    """What the server lacks or what loading mapped, for the user (each said once on stderr)."""
    bypass_available: bool = True
    """False when no BYPASSRLS role could be made (the comparison with RLS bypassed is skipped)."""
    _templates: dict[str, str] = field(default_factory=dict, repr=False)
    _relations: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _built: set[str] = field(default_factory=set, repr=False)
    _roles_ready: bool = field(default=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
        _warn_once(message)

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit connection as the server's administrator: it creates roles and
        databases and reads the catalog; it never runs domain or trace SQL."""
        try:
            return psycopg.connect(self.server.dsn(dbname), autocommit=True)
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {e}") from e

    def login(self, role: str, dbname: str, **options: Any) -> psycopg.Connection[Any]:
        """A connection that logged in as ``role`` itself (its own password)."""
        if role == self.app_role and self.app_dsn:
            from psycopg.conninfo import make_conninfo

            dsn = make_conninfo(self.app_dsn, dbname=dbname)
        else:
            dsn = self.server.dsn(dbname, role, role_password(self.server, role))
        try:
            return psycopg.connect(dsn, **options)
        except psycopg.OperationalError as e:
            users_own = role == self.app_role and bool(self.app_dsn)
            if "password authentication failed" not in str(e) or users_own:
                raise DatabaseUnavailable(f"cannot log in as {role}: {e}") from e
        # another process (with another administrator secret) reset the password: set ours
        with self._lock:
            self._roles_ready = False
        self.ensure_roles()
        try:
            return psycopg.connect(dsn, **options)
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"cannot log in as {role}: {e}") from e

    def ensure_roles(self) -> None:
        """Create (or reset) our three roles with this run's passwords and their limits."""
        with self._lock:
            if self._roles_ready:
                return
            with self.admin() as conn:
                self._ensure_roles(conn)
            self._roles_ready = True

    def _ensure_roles(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        superuser = bool(row and row[0])
        if not superuser and not (row and row[1]):
            raise DatabaseUnavailable(
                "the --db user can neither create roles nor is it a superuser: PolicyStrata "
                f"needs its roles {self.owner_role}, {self.app_role}, {self.bypass_role}"
            )
        existing = {
            r[0]
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                ([self.app_role, self.owner_role, self.bypass_role],),
            )
        }
        common = "LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION"
        owner_rls = "BYPASSRLS" if superuser else "NOBYPASSRLS"
        # the owner inherits pg_database_owner (CREATE on its databases' public schema)
        specs = [
            (self.owner_role, f"{common} INHERIT {owner_rls}"),
            (self.app_role, f"{common} NOINHERIT NOBYPASSRLS"),
        ]
        if superuser:
            specs.append((self.bypass_role, f"{common} NOINHERIT BYPASSRLS"))
        else:
            self.bypass_available = False
            self.note(
                "the --db user is not a superuser, so no role can have BYPASSRLS: the "
                "comparison with row level security bypassed is not run, and seeding tables "
                "under FORCE ROW LEVEL SECURITY needs their policies to admit the owner"
            )
        for role, attributes in specs:
            verb = "ALTER" if role in existing else "CREATE"
            if self.app_dsn and role == self.app_role and role in existing:
                continue  # the user's own app login: leave its password alone
            # the SCRAM verifier, not the password: a statement log never holds a password
            conn.execute(
                pgsql.SQL("{} ROLE {} " + attributes + " PASSWORD {}").format(
                    pgsql.SQL(verb),
                    _ident(role),
                    pgsql.Literal(scram_verifier(role_password(self.server, role))),
                )
            )
            member_of = [
                r[0]
                for r in conn.execute(
                    "SELECT s.rolname FROM pg_roles s WHERE s.rolname = ANY(%s) "
                    "AND pg_has_role(%s, s.oid, 'MEMBER')",
                    (list(SERVER_ROLES), role),
                )
            ]
            for server_role in member_of:
                conn.execute(
                    pgsql.SQL("REVOKE {} FROM {}").format(_ident(server_role), _ident(role))
                )
        limits = {
            "statement_timeout": str(DEFAULT_TIMEOUT_MS),
            "lock_timeout": str(LOCK_TIMEOUT_MS),
            "idle_in_transaction_session_timeout": str(IDLE_TIMEOUT_MS),
            "work_mem": WORK_MEM,
            "default_transaction_read_only": "on",
        }
        if superuser:
            limits["temp_file_limit"] = TEMP_FILE_LIMIT
        else:
            self.note(
                f"the --db user is not a superuser, so temp_file_limit ({TEMP_FILE_LIMIT}) cannot "
                "be set for the roles that run trace SQL; the server's own limit applies"
            )
        for role, _attributes in specs:
            if role == self.owner_role:
                continue
            for name, value in limits.items():
                conn.execute(
                    pgsql.SQL("ALTER ROLE {} SET {} = {}").format(
                        _ident(role), pgsql.SQL(name), pgsql.Literal(value)
                    )
                )
        if not superuser:
            # a non-superuser administrator must be a member of the owner to create its
            # databases (PostgreSQL 16: CREATEROLE gives the member admin option)
            with contextlib.suppress(psycopg.Error):
                conn.execute(pgsql.SQL("GRANT {} TO CURRENT_USER").format(_ident(self.owner_role)))

    # -- templates and databases
    def template(
        self, schema_sql: str, seed_sql: str = "", sources: tuple[str, str] | None = None
    ) -> str:
        """The name of the template database for this (schema, seed) text; built on first use."""
        key = hashlib.sha256((schema_sql + "\0" + seed_sql).encode()).hexdigest()[:16]
        with self._lock:
            name = self._templates.get(key)
            if name is None:
                name = f"strata_tpl_{key}"
                self._build_template(name, schema_sql, seed_sql, sources)
                self._templates[key] = name
            return name

    def _build_template(
        self, name: str, schema_sql: str, seed_sql: str, sources: tuple[str, str] | None
    ) -> None:
        """Build the template, or reuse it: the name is a digest of the (schema, seed) text and
        a database is flagged IS_TEMPLATE only after a complete load, so a flagged one with this
        name (left by another cluster on the same server) has exactly this content."""
        self.ensure_roles()
        with self.admin() as conn:
            row = conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if row is not None and row[0]:
                from policystrata.db.ddl import prepare_script

                self._relations[name] = prepare_script(schema_sql, "schema.sql").relations
                return  # reused, not built: drop_templates() leaves it to its builder
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(_ident(name)))
            conn.execute(
                pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    _ident(name), _ident(self.owner_role)
                )
            )
        try:
            self._relations[name] = self.load(
                name, schema_sql, seed_sql, sources=sources or ("schema.sql", "seed.sql")
            )
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

    def load(
        self,
        dbname: str,
        schema_sql: str,
        seed_sql: str = "",
        *,
        sources: tuple[str, str] = ("schema.sql", "seed.sql"),
    ) -> frozenset[str]:
        """Run schema.sql then seed.sql in ``dbname``, logged in as the owner role, in one
        transaction (role statements mapped onto ours first, see :mod:`policystrata.db.ddl`);
        then give the RLS-bypass role SELECT on the tables. Returns the relations the schema
        creates (the tables and views trace SQL may read)."""
        from policystrata.db.ddl import prepare_script

        self.ensure_roles()
        schema = prepare_script(schema_sql, sources[0], app_role=self.app_role)
        seed = prepare_script(seed_sql, sources[1], app_role=self.app_role)
        for note in [*schema.notes, *seed.notes]:
            self.note(note)
        options = f"-c statement_timeout={LOAD_TIMEOUT_MS} -c lock_timeout={LOAD_TIMEOUT_MS}"
        with self.login(self.owner_role, dbname, options=options) as conn:
            _check_role(conn, self.owner_role, bypass=None)
            try:
                with conn.transaction():
                    if schema.text.strip():
                        conn.execute(schema.text.encode())
                    if seed.text.strip():
                        conn.execute(seed.text.encode())
                    if self.bypass_available:
                        conn.execute(
                            pgsql.SQL(
                                "GRANT USAGE ON SCHEMA public TO {0}; "
                                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}"
                            ).format(_ident(self.bypass_role))
                        )
            except psycopg.Error as e:
                diag = e.diag
                raise StrataError(
                    f"loading the domain into {dbname} as {self.owner_role} failed: "
                    f"{diag.message_primary or e}"
                    + (
                        f" (statement position {diag.statement_position})"
                        if diag.statement_position
                        else ""
                    )
                ) from e
        return schema.relations

    def relations(self, template: str) -> frozenset[str]:
        """The tables and views of the databases cloned from ``template``."""
        return self._relations.get(template, frozenset())

    def clone(
        self, template: str, name: str | None = None, *, tenant_settings: Sequence[str] = ()
    ) -> Database:
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
        return Database(
            self, name, relations=self.relations(template), tenant_settings=tuple(tenant_settings)
        )

    @property
    def private(self) -> bool:
        """The server is ours alone (a throwaway server): templates named after the schema
        text are safe to build, reuse and drop there."""
        return bool(getattr(self.server, "private", False))

    def database(
        self,
        schema_sql: str,
        seed_sql: str = "",
        *,
        sources: tuple[str, str] | None = None,
        tenant_settings: Sequence[str] = (),
    ) -> Database:
        """A new database holding ``schema_sql`` + ``seed_sql``, loaded by the owner role (the
        one way every database is made; the caller drops it). On a private server it is cloned
        from a template built once per (schema, seed) text (a clone takes milliseconds); on a
        server the user gives, template names could belong to another process, so it is loaded
        directly. ``sources`` name the two texts in load errors; ``tenant_settings`` are the
        settings its sessions set to the tenant (see :attr:`Database.tenant_settings`)."""
        if self.private:
            return self.clone(
                self.template(schema_sql, seed_sql, sources), tenant_settings=tenant_settings
            )
        return self._fresh(schema_sql, seed_sql, sources, tenant_settings)

    def _fresh(
        self,
        schema_sql: str,
        seed_sql: str,
        sources: tuple[str, str] | None,
        tenant_settings: Sequence[str] = (),
    ) -> Database:
        self.ensure_roles()
        name = f"strata_scan_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(
                pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    _ident(name), _ident(self.owner_role)
                )
            )
        try:
            relations = self.load(
                name, schema_sql, seed_sql, sources=sources or ("schema.sql", "seed.sql")
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.drop(name)
            raise
        return Database(self, name, relations=relations, tenant_settings=tuple(tenant_settings))

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


_ROLE_CHECK = """
SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       session_user = current_user,
       ARRAY(SELECT s.rolname FROM pg_roles s
             WHERE s.rolname = ANY(%s) AND pg_has_role(current_user, s.oid, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""


def _check_role(conn: psycopg.Connection[Any], role: str, *, bypass: bool | None) -> None:
    """Refuse a session whose role could become more than it must be: a superuser, CREATEROLE,
    a member of a predefined role that reaches the server's files or programs, a session that
    is not its own login; and BYPASSRLS unless ``bypass`` (None: either)."""
    row = psycopg.Cursor(conn).execute(_ROLE_CHECK, (list(SERVER_ROLES),)).fetchone()
    problems = []
    if row is None:
        problems.append("its role is unknown")
    else:
        superuser, bypassrls, createrole, _createdb, own_login, members = row
        if superuser:
            problems.append("it is a superuser")
        if createrole:
            problems.append("it has CREATEROLE")
        if members:
            problems.append(f"it is a member of {', '.join(members)}")
        if not own_login:
            problems.append("the session switched role")
        if bypass is False and bypassrls:
            problems.append("it has BYPASSRLS, so RLS would not apply")
        if bypass is True and not bypassrls:
            problems.append("it lacks BYPASSRLS, so the comparison would not bypass RLS")
    if problems:
        with contextlib.suppress(Exception):
            conn.close()
        raise StrataError(f"refusing to run as {role}: {'; '.join(problems)}")


# --------------------------------------------------------------------------- database


@dataclass
class Database(QueryRunner):
    """One domain database: the app-role and RLS-bypass runners and their connections."""

    cluster: Cluster
    name: str
    relations: frozenset[str] = frozenset()
    """The tables and views trace SQL may read (what the domain's schema creates)."""
    tenant_settings: tuple[str, ...] = ()
    """The session settings each transaction sets to the case's tenant (``set_config(name,
    tenant, true)``): the settings the row security policies of this database's DDL compare a
    tenant column with, derived by the rules (``tenant_setting`` in ``rules/database.dl``) and
    given by :class:`policystrata.db.domain.DomainDatabases`. Empty: none is set."""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    _app: psycopg.Connection[Any] | None = field(default=None, repr=False)
    _bypass: psycopg.Connection[Any] | None = field(default=None, repr=False)
    cache_results: bool = False
    """Reuse the result of an identical vetted query (same SQL, tenant, params, role): only
    for a database nobody changes while it is used (every query runs read-only and is rolled
    back), such as the per-run databases of :class:`~policystrata.db.domain.DomainDatabases`."""
    _results: dict[tuple[Any, ...], QueryResult] = field(default_factory=dict, repr=False)

    def vet(self, text: str) -> VettedSQL:
        """:func:`~policystrata.db.vet.vet_sql` against this database's relations."""
        from policystrata.db.vet import vet_sql

        return vet_sql(text, relations=self.relations)

    @property
    def bypass_available(self) -> bool:
        return self.cluster.bypass_available

    # -- connections
    def _connect(self, role: str, *, bypass: bool) -> psycopg.Connection[Any]:
        conn = self.cluster.login(
            role, self.name, autocommit=True, cursor_factory=psycopg.RawCursor
        )
        _check_role(conn, role, bypass=bypass)
        return conn

    def _app_conn(self) -> psycopg.Connection[Any]:
        if self._app is None or self._app.closed:
            self._app = self._connect(self.cluster.app_role, bypass=False)
        return self._app

    def _bypass_conn(self) -> psycopg.Connection[Any]:
        if not self.cluster.bypass_available:
            raise StrataError("no BYPASSRLS role on this server: the comparison is not run")
        if self._bypass is None or self._bypass.closed:
            self._bypass = self._connect(self.cluster.bypass_role, bypass=True)
        return self._bypass

    def close(self) -> None:
        for conn in (self._app, self._bypass):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._app = self._bypass = None

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
                tenant_settings=self.tenant_settings or None,
            )

    def __exit__(self, *exc: object) -> None:
        self.drop()

    # -- the recipe
    @contextlib.contextmanager
    def transaction(
        self, tenant: str | None, *, bypass: bool = False, timeout_ms: int | None = None
    ) -> Iterator[psycopg.Connection[Any]]:
        """The per-case transaction; yields the connection, always rolls back.

        Exposed for tests of the recipe itself; checks go through :meth:`run_app` /
        :meth:`run_bypass`, which only accept vetted SQL.
        """
        conn = self._bypass_conn() if bypass else self._app_conn()
        ms = int(timeout_ms if timeout_ms is not None else self.timeout_ms)
        # the whole prelude in one round trip (our own text: a parameterless simple query)
        prelude = pgsql.SQL(
            "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}; "
            "SET LOCAL lock_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}; "
            "SET LOCAL work_mem = {}"
        ).format(
            pgsql.SQL(str(ms)),  # ints
            pgsql.SQL(str(min(ms, LOCK_TIMEOUT_MS))),
            pgsql.SQL(str(IDLE_TIMEOUT_MS)),
            pgsql.Literal(WORK_MEM),
        )
        if self.tenant_settings:  # each setting the policies read, to the tenant, locally
            calls = [
                pgsql.SQL("set_config({}, {}, true)").format(
                    pgsql.Literal(name), pgsql.Literal(tenant or "")
                )
                for name in self.tenant_settings
            ]
            prelude = pgsql.SQL("{}; SELECT {}").format(prelude, pgsql.SQL(", ").join(calls))
        try:
            conn.execute(prelude.as_string(conn))
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")

    def _execute(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        bypass: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        role = self.cluster.bypass_role if bypass else self.cluster.app_role
        t0 = time.perf_counter()
        with self.transaction(tenant, bypass=bypass, timeout_ms=timeout_ms) as conn:
            try:
                cur = prepared(conn, vetted.text, params)
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


def prepared(conn: psycopg.Connection[Any], text: str, params: Sequence[Any]) -> Any:
    """Execute ``text`` as a prepared statement (extended query protocol: Parse, Bind,
    Execute), never as a simple query: the server parses exactly one statement, whatever the
    text holds (``cannot insert multiple commands into a prepared statement``)."""
    return conn.execute(text, list(params), prepare=True)


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
