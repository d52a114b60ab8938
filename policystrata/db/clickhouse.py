"""ClickHouse domains in a real ClickHouse engine: chdb (embedded ClickHouse, in this process).

The same interface the PostgreSQL backend gives the check pipeline
(:class:`policystrata.db.domain.DomainDatabases` -> a database with ``vet``, ``run_app``,
``run_bypass``, ``relations``, ``bypass_available``): :class:`ClickHouseDatabases` loads the
domain's schema.sql and seed.sql into a chdb session once, and hands out one
:class:`ClickHouseDatabase` per DDL in force.

**What runs, and what stays static.** chdb has no access management: ``CREATE ROW POLICY``,
``CREATE ROLE`` / ``USER``, ``GRANT`` and ``REVOKE`` need grants its default user does not have.
So these statements are not executed; they are read (with the same parser that gives the rules
their ``rls_*`` / ``table_grant`` facts), and a row policy is *evaluated*: :meth:`run_app`
rewrites the vetted query so that every read of a table under row policies reads
``(SELECT * FROM t WHERE <USING>) AS t`` instead, with ``currentUser()`` (in the policy and in
the query) bound to the session's project, permissive policies OR-ed and restrictive ones
AND-ed, as ClickHouse combines them. :meth:`run_bypass` runs the query as written (every row:
the comparison "row policies bypassed"). The rows are real ClickHouse rows (its functions, time
zones, ``SAMPLE``, materialized views filled on insert); what stays static is who may run what:
grants (a role that may write, the read-only assumption) are judged from the DDL only. A
``Distributed`` table needs a cluster, which chdb does not have: it is created as a ``Merge``
table over its local table (the same rows, one shard).

Every query is vetted first (the read-only guard and the ClickHouse execution allow-list of
:mod:`policystrata.lower.sql.allowlist`), then bounded per query: ``readonly = 1``,
``max_execution_time``, ``max_result_rows`` (overflow throws), ``max_memory_usage``; the
statement is one SELECT (the allow-list refuses a query's own ``SETTINGS``).

>>> dbs = ClickHouseDatabases(load_domain("analytics_clickhouse"))      # doctest: +SKIP
>>> db = dbs.for_ddl(None)                                              # doctest: +SKIP
>>> db.run_app(db.vet("select count() from events"), "project_beta_web").rows  # doctest: +SKIP
[[480]]
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from policystrata.db.session import (
    QueryFailed,
    QueryResult,
    QueryRunner,
    sort_rows,
    to_json_value,
)
from policystrata.db.vet import VettedSQL, vet_sql
from policystrata.errors import StrataError

if TYPE_CHECKING:
    from policystrata.model import Domain

DIALECT = "clickhouse"
#: What the session's user is called in a row policy: the tenant of the session.
SESSION_USER = "currentUser"
DEFAULT_TIMEOUT_MS = 2000
MAX_RESULT_ROWS = 10_000
MAX_MEMORY = 512 * 1024 * 1024
APP_ROLE = "chdb_app (row policies evaluated)"
BYPASS_ROLE = "chdb_bypass (row policies not applied)"

#: Statements of access management chdb cannot execute: read, never run.
ACCESS_STATEMENTS = (
    ("CREATE", "ROW"),
    ("CREATE", "ROLE"),
    ("CREATE", "USER"),
    ("CREATE", "SETTINGS"),
    ("CREATE", "QUOTA"),
    ("ALTER", "ROW"),
    ("ALTER", "ROLE"),
    ("ALTER", "USER"),
    ("DROP", "ROW"),
    ("DROP", "ROLE"),
    ("DROP", "USER"),
    ("GRANT", ""),
    ("REVOKE", ""),
    ("SET", "ROLE"),
)


def chdb_available() -> bool:
    """chdb can be imported (``pip install 'policystrata[clickhouse]'``)."""
    try:
        import chdb  # noqa: F401
    except ImportError:
        return False
    return True


class ClickHouseQueryFailed(QueryFailed):
    """ClickHouse rejected or stopped a vetted query; ``sqlstate`` is ``CH<code>``."""

    @property
    def kind(self) -> str:
        code = (self.sqlstate or "")[2:]
        if code in ("159", "160", "209", "394"):  # TIMEOUT_EXCEEDED, TOO_SLOW, ...
            return "timeout"
        if code in ("158", "396", "241", "307"):  # TOO_MANY_ROWS(_OR_BYTES), MEMORY_LIMIT...
            return "limit"
        if code in ("164", "497"):  # READONLY, ACCESS_DENIED
            return "denied"
        return "error"


def _failure(exc: Exception) -> ClickHouseQueryFailed:
    text = str(exc).strip()
    m = re.search(r"Code: (\d+)\.", text)
    message = re.sub(r"^Code: \d+\. DB::Exception: ", "", text.splitlines()[0] if text else "")
    return ClickHouseQueryFailed(f"CH{m.group(1)}" if m else None, message[:500])


def _head(tokens: Sequence[Any]) -> tuple[str, str]:
    first = tokens[0].upper if tokens else ""
    second = tokens[1].upper if len(tokens) > 1 else ""
    return first, second


def physical_statements(ddl: str) -> list[tuple[int, str]]:
    """``(line, statement)`` of a ClickHouse DDL script that chdb executes: everything but
    access management (row policies, roles, users, grants), a ``Distributed`` table created as
    a ``Merge`` table over its local table.

    >>> for _line, s in physical_statements('''CREATE TABLE e (a String) ENGINE = Log;
    ... CREATE ROW POLICY p ON e USING a = currentUser() TO r;
    ... CREATE TABLE d AS e ENGINE = Distributed(c, currentDatabase(), e, rand());'''):
    ...     print(s)
    CREATE TABLE e (a String) ENGINE = Log
    CREATE TABLE d AS e ENGINE = Merge(currentDatabase(), '^e$')
    """
    from policystrata.sql.adapter import exp, ident_name, parse_one, split_statements

    out: list[tuple[int, str]] = []
    for stmt in split_statements(ddl, DIALECT):
        first, second = _head(stmt.tokens)
        if (first, second) in ACCESS_STATEMENTS or (first, "") in ACCESS_STATEMENTS:
            continue
        text = stmt.text
        if first == "CREATE" and any(t.upper == "DISTRIBUTED" for t in stmt.tokens):
            tree = parse_one(text, DIALECT)
            props = tree.args.get("properties")
            engine = (
                next((p.this for p in props.expressions if isinstance(p, exp.EngineProperty)), None)
                if props is not None
                else None
            )
            args = list(engine.expressions) if isinstance(engine, exp.Func) else []
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            if len(args) >= 3 and isinstance(target, exp.Table):
                local = args[2]
                lname = str(local.this) if isinstance(local, exp.Literal) else ident_name(local)
                text = (
                    f"CREATE TABLE {ident_name(target.this)} AS {lname} "
                    f"ENGINE = Merge(currentDatabase(), '^{re.escape(lname)}$')"
                )
        out.append((stmt.line, text))
    return out


class _Engine:
    """One chdb session in a private temporary directory (chdb allows one per process)."""

    _shared: _Engine | None = None

    def __init__(self) -> None:
        from chdb import session

        self.path = tempfile.mkdtemp(prefix="strata-chdb-")
        self.session = session.Session(self.path)
        self.users = 0
        self.current: str | None = None

    @classmethod
    def acquire(cls) -> _Engine:
        if cls._shared is None:
            cls._shared = cls()
        cls._shared.users += 1
        return cls._shared

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and _Engine._shared is self:
            _Engine._shared = None
            with contextlib.suppress(Exception):
                self.session.close()
            shutil.rmtree(self.path, ignore_errors=True)

    def run(self, database: str, sql: str, fmt: str = "JSONCompact") -> Any:
        if self.current != database:
            self.session.query(f"USE {database}")
            self.current = database
        return self.session.query(sql, fmt)


_COUNTER = [0]


class ClickHouseDatabase(QueryRunner):
    """One domain database in chdb with the row policies of one DDL in force (see the module
    docstring); what :class:`~policystrata.db.evidence.RowProbe` and the pipeline use."""

    dialect = DIALECT
    bypass_available = True
    #: What carries the tenant in this database's row policies (``rules/database.dl``
    #: ``tenant_setting``, derived from its DDL: ``currentUser()`` for ``USING project_id =
    #: currentUser()``); each is bound to the session's project. Without a checker's settings:
    #: ClickHouse's session user, ``currentUser()``.
    tenant_settings: tuple[str, ...] = (f"{SESSION_USER}()",)

    def __init__(
        self,
        engine: _Engine,
        name: str,
        relations: frozenset[str],
        policies: dict[str, list[tuple[str, bool]]],
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
    ) -> None:
        self.engine = engine
        self.physical = name.split("#", 1)[0]  # the loaded database (its row policies differ)
        self.name = name
        self.relations = relations
        self.policies = policies
        self.timeout_ms = timeout_ms
        self.cache_results = False
        self._results: dict[tuple[Any, ...], QueryResult] = {}

    def vet(self, text: str) -> VettedSQL:
        """:func:`~policystrata.db.vet.vet_sql` with the ClickHouse allow-list."""
        return vet_sql(text, relations=self.relations, dialect=DIALECT)

    def scoped(self, text: str, tenant: str | None) -> str:
        """The query with each read of a table under row policies replaced by the rows the
        policies let the session's project see, and ``currentUser()`` bound to the project.

        The rewrite is ours, on the parsed query (the text was vetted as written)."""
        from policystrata.sql.adapter import exp, ident_name, parse_expression, parse_one

        user = exp.Literal.string(tenant or "")
        tree = parse_one(text, DIALECT)
        ctes = {ident_name(c.alias) for c in tree.find_all(exp.CTE)}
        carriers = {_call_key(s) for s in self.tenant_settings}

        def bind_user(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Func) and _call_key(node.sql(dialect=DIALECT)) in carriers:
                return user.copy()
            return node

        def scope(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
                return node
            name = ident_name(node.this)
            pols = self.policies.get(name)
            if name in ctes or pols is None or isinstance(node.parent, exp.Subquery):
                return node
            permissive = [parse_expression(u, DIALECT) for u, p in pols if p]
            restrictive = [parse_expression(u, DIALECT) for u, p in pols if not p]
            cond: exp.Expr = exp.or_(*permissive) if permissive else exp.false()
            for r in restrictive:
                cond = exp.and_(cond, r)
            cond = cond.transform(bind_user)
            inner = exp.Table(this=exp.to_identifier(name))
            if node.args.get("sample") is not None:
                inner.set("sample", node.args["sample"].copy())
            query = exp.select("*").from_(inner).where(cond)
            alias = node.args.get("alias")
            alias_name = ident_name(alias.this) if alias is not None else name
            return exp.Subquery(
                this=query, alias=exp.TableAlias(this=exp.to_identifier(alias_name))
            )

        tree = tree.transform(scope).transform(bind_user)
        return str(tree.sql(dialect=DIALECT))

    def _bounded(self, text: str, timeout_ms: int | None) -> str:
        ms = int(timeout_ms if timeout_ms is not None else self.timeout_ms)
        seconds = max(1, -(-ms // 1000))
        settings = (
            f"readonly = 1, max_execution_time = {seconds}, max_result_rows = {MAX_RESULT_ROWS}, "
            f"result_overflow_mode = 'throw', max_memory_usage = {MAX_MEMORY}, "
            "output_format_json_quote_64bit_integers = 0, "
            "output_format_json_quote_denormals = 0"
        )
        return f"{text}\nSETTINGS {settings}"

    def _check_params(self, params: Sequence[Any]) -> None:
        if params:
            raise ClickHouseQueryFailed(
                "CH0", "bound parameters are not supported for ClickHouse SQL"
            )

    def _execute(
        self,
        vetted: VettedSQL,
        tenant: str | None,
        params: Sequence[Any],
        bypass: bool,
        timeout_ms: int | None,
    ) -> QueryResult:
        text = vetted.text if bypass else self.scoped(vetted.text, tenant)
        t0 = time.perf_counter()
        try:
            raw = self.engine.run(self.physical, self._bounded(text, timeout_ms))
        except Exception as exc:  # chdb raises its own error type (ChdbError)
            raise _failure(exc) from None
        data = json.loads(str(raw) or "{}")
        columns = [m["name"] for m in data.get("meta", [])]
        rows = [[to_json_value(v) for v in r] for r in data.get("data", [])]
        return QueryResult(
            columns=columns,
            rows=sort_rows(rows),
            role=BYPASS_ROLE if bypass else APP_ROLE,
            tenant=tenant,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        )

    def close(self) -> None:
        self._results.clear()

    def drop(self) -> None:
        self.close()


def _call_key(call: str) -> str:
    """A call's text compared as ClickHouse names functions (case-insensitively), without
    spaces: ``currentUser()`` and ``currentuser( )`` are one carrier."""
    return "".join(call.split()).lower()


class ClickHouseDatabases:
    """The domain's ClickHouse databases in one chdb session, loaded when first needed: one
    physical database per distinct set of executed statements (schema.sql and seed.sql), one
    :class:`ClickHouseDatabase` per DDL in force (its row policies)."""

    def __init__(
        self,
        domain: Domain,
        *,
        schema_sql: str | None = None,
        seed_sql: str | None = None,
        sources: tuple[str, str] = ("schema.sql", "seed.sql"),
    ) -> None:
        from policystrata.db.domain import domain_sql

        schema, seed = domain_sql(domain)
        self.schema = schema if schema_sql is None else schema_sql
        self.seed = seed if seed_sql is None else seed_sql
        self.sources = sources
        self._engine: _Engine | None = None
        self._physical: dict[str, str] = {}  # executed DDL text -> database name
        self._dbs: dict[str | None, ClickHouseDatabase] = {}
        self._failed: str | None = None
        self._settings: Callable[[str | None], Sequence[str]] | None = None

    @property
    def started(self) -> bool:
        return bool(self._dbs)

    @property
    def mode(self) -> str:
        return "chdb" if self._engine is not None else "none"

    @property
    def notes(self) -> list[str]:
        return [
            "chdb: row policies are evaluated as predicates over the same rows; grants, roles "
            "and users are read from the DDL, not executed"
        ]

    @property
    def failure(self) -> str | None:
        return self._failed

    def use_tenant_settings(self, settings: Callable[[str | None], Sequence[str]]) -> None:
        """Where what carries the tenant in a database's row policies comes from (as
        :meth:`policystrata.db.domain.DomainDatabases.use_tenant_settings`): ``settings`` maps a
        DDL text to the rules' ``tenant_setting`` atoms; the evaluated policies bind exactly
        these to the session's project."""
        self._settings = settings
        for key, db in self._dbs.items():
            db.tenant_settings = tuple(settings(self.schema if key is None else key))

    def for_ddl(self, ddl: str | None) -> ClickHouseDatabase:
        """The database whose DDL in force is ``ddl`` (None or schema.sql: the base one)."""
        key = None if ddl is None or ddl == self.schema else ddl
        db = self._dbs.get(key)
        if db is not None:
            return db
        from policystrata.db.domain import DatabaseSetupFailed
        from policystrata.lower.schema import parse_schema

        text = self.schema if key is None else key
        try:
            info = parse_schema(text, source=self.sources[0], dialect=DIALECT)
        except StrataError as exc:
            raise DatabaseSetupFailed(str(exc)) from None
        physical = physical_statements(text)
        name = self._load(physical)
        policies: dict[str, list[tuple[str, bool]]] = {}
        for pol in info.policies:
            if pol.using is not None and pol.command in ("all", "select"):
                policies.setdefault(pol.table, []).append((pol.using, pol.permissive))
        db = ClickHouseDatabase(
            self._engine,  # type: ignore[arg-type]
            f"{name}#{len(self._dbs)}",
            frozenset(info.tables),
            policies,
        )
        db.cache_results = True
        if self._settings is not None:
            db.tenant_settings = tuple(self._settings(text))
        self._dbs[key] = db
        return db

    def _load(self, physical: list[tuple[int, str]]) -> str:
        from policystrata.db.domain import DatabaseSetupFailed, NoDatabase

        key = "\n;\n".join(s for _l, s in physical)
        if key in self._physical:
            return self._physical[key]
        if self._engine is None:
            if not chdb_available():
                self._failed = (
                    "chdb is not installed: no real ClickHouse rows (pip install "
                    "'policystrata[clickhouse]')"
                )
                raise NoDatabase(self._failed)
            self._engine = _Engine.acquire()
        _COUNTER[0] += 1
        name = f"strata_{_COUNTER[0]}"
        steps = [(self.sources[0], line, s) for line, s in physical]
        steps += [(self.sources[1], line, s) for line, s in physical_statements(self.seed)]
        try:
            self._engine.session.query(f"CREATE DATABASE {name}")
        except Exception as exc:
            raise DatabaseSetupFailed(f"chdb: {_failure(exc)}") from None
        for source, line, stmt in steps:
            try:
                self._engine.run(name, stmt, "CSV")
            except Exception as exc:
                raise DatabaseSetupFailed(f"{source}:{line}: chdb: {_failure(exc)}") from None
        self._physical[key] = name
        return name

    def close(self) -> None:
        """Drop the databases and the chdb session. Idempotent."""
        if self._engine is not None:
            for name in self._physical.values():
                with contextlib.suppress(Exception):
                    self._engine.session.query(f"DROP DATABASE IF EXISTS {name}")
            self._engine.release()
        self._engine = None
        self._physical.clear()
        self._dbs.clear()
