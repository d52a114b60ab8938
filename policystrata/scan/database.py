"""The scan's real database: which one, and what it is used for (orchestration only).

The scan decides nothing here. When ``database:`` is configured (or ``--db`` given), the
domain's schema and seed (or the config's ``database.schema`` / ``seed``) are loaded into the
one kind of database every command uses (:class:`policystrata.db.domain.DomainDatabases`:
started when a record first needs it). The databases are attached to the checker, so each
record's SQL runs through the one check pipeline — beside the reference compiler's SQL for the
same request — and each of the config's ``rls_checks`` / ``state_assertions`` is a case of its
own (:class:`policystrata.case.DbCheck`). What the rows show is decided by rules
(``rules/evidence.dl``, ``rules/execution.dl``, ``rules/db_checks.dl``) with proofs.

>>> counts = ExecutionCounts()
>>> counts.add({"layer": {"rows": [[1]]}})
>>> counts.add({"executed": False, "reason": "rejected by the read-only guard (...)"})
>>> counts.add({"layer": {"error": {"kind": "timeout"}}})
>>> counts.as_dict()
{'executed': 1, 'refused': 1, 'failed': 1}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policystrata.case import Case, DbCheck

if TYPE_CHECKING:
    from policystrata.db.domain import DomainDatabases
    from policystrata.model import Domain
    from policystrata.scan.config import ScanConfig


@dataclass
class ExecutionCounts:
    """How many records' SQL ran on the server, was refused by the gate, or failed there."""

    executed: int = 0
    refused: int = 0
    failed: int = 0

    def add(self, details: dict[str, Any]) -> None:
        """Count one record's real-row evidence (the ``details`` of its Evidence)."""
        layer = details.get("layer", {})
        if "rows" in layer:
            self.executed += 1
        elif "error" in layer:
            self.failed += 1
        elif "refused" in layer or str(details.get("reason", "")).startswith("rejected"):
            self.refused += 1
        elif details.get("executed") is False:
            self.failed += 1

    def as_dict(self) -> dict[str, int]:
        return {"executed": self.executed, "refused": self.refused, "failed": self.failed}


def database_spec(config: ScanConfig, db_spec: str | None) -> tuple[str | None, str]:
    """The ``--db`` spec the scan runs with, or None with why no database is used."""
    dbcfg = config.model.database
    if db_spec == "none":
        return None, "--db none"
    if dbcfg is None and db_spec is None:
        return None, "no database configured"
    return db_spec or (dbcfg.admin_url if dbcfg and dbcfg.admin_url else "auto"), ""


@contextlib.contextmanager
def scan_databases(
    config: ScanConfig, domain: Domain, db_spec: str | None, notes: list[str]
) -> Iterator[tuple[DomainDatabases | None, str]]:
    """The scan's databases (or None) and, when None, why. A required database that cannot
    be had is a config error at ``database.required`` (exit 2)."""
    from policystrata.db.domain import domain_databases

    spec, why = database_spec(config, db_spec)
    dbcfg = config.model.database
    schema_path = config.db_file("schema")
    seed_path = config.db_file("seed")
    if spec is not None and schema_path is None and "schema" not in domain.sources:
        spec, why = (
            None,
            ("no schema to load: the domain has no schema.sql and database.schema is not set"),
        )
        notes.append(f"database evidence not collected: {why}")
    if spec is None:
        if dbcfg is not None and dbcfg.required and why != "--db none":
            raise config.doc.error(("database", "required"), f"database required: {why}")
        yield None, why
        return
    schema_sql = schema_path.read_text(encoding="utf-8") if schema_path else None
    seed_sql = seed_path.read_text(encoding="utf-8") if seed_path else None  # None: the domain's
    sources = (
        config.relative(schema_path) if schema_path else "schema.sql",
        config.relative(seed_path) if seed_path else "seed.sql",
    )
    with domain_databases(
        spec,
        domain,
        schema_sql=schema_sql,
        seed_sql=seed_sql,
        sources=sources,
        app_dsn=dbcfg.app_url if dbcfg else None,
    ) as dbs:
        if dbs is None:
            why = "no PostgreSQL server binaries (install postgresql, or pass --db DSN)"
            if dbcfg is not None and dbcfg.required:
                raise config.doc.error(("database", "required"), f"database required: {why}")
        yield dbs, why


def reference_sql(domain: Domain, case: Case) -> tuple[str | None, str]:
    """The reference compiler's SQL for the record's request under the principal's tenants
    (evidence only: it runs beside the record's SQL and is never lowered), or None and why."""
    principal = domain.policy.principals.get(case.principal or "")
    if case.ir is None:
        return None, "the record has no semantic IR"
    if principal is None:
        return None, "the record's principal is not in policy.yaml"
    from policystrata.stack.compiler import compile_query

    try:
        compiled = compile_query(domain, list(principal.tenant_ids), case.ir)
    except Exception as exc:  # the reference stack cannot build every request: no comparison
        return None, f"the reference compiler could not compile it ({type(exc).__name__})"
    case.reference_sql = compiled.sql
    case.reference_params = dict(compiled.params)
    return compiled.sql, "reference stack compiler"


def db_check_cases(config: ScanConfig) -> Iterator[Case]:
    """One case per ``database.rls_checks`` / ``state_assertions`` item, in config order."""
    from policystrata.facts import Provenance

    dbcfg = config.model.database
    if dbcfg is None:
        return
    for section, kind in (("rls_checks", "rls_check"), ("state_assertions", "state_assertion")):
        for i, item in enumerate(getattr(dbcfg, section)):
            origin = Provenance(config.name, line=config.line("database", section, i))
            yield Case(
                id=f"{section}.{item.id}",
                db_check=_db_check(kind, item),
                origin=origin,
                meta={"regression_case": getattr(item, "regression_case", None)},
            )


def _db_check(kind: str, item: Any) -> DbCheck:
    if kind == "rls_check":
        return DbCheck(
            kind,
            item.id,
            item.sql,
            item.tenant_id,
            expected_rows=item.expected_rows,
            expected_tenants=tuple(item.expected_tenant_ids),
            tenant_column=item.tenant_column or "tenant_id",
            required=item.required,
        )
    forbidden = item.forbidden_values
    pairs = (
        tuple((c, tuple(v)) for c, v in forbidden.items())
        if isinstance(forbidden, dict)
        else (("*", tuple(forbidden)),)
        if forbidden
        else ()
    )
    return DbCheck(
        kind,
        item.id,
        item.sql,
        item.tenant_id,
        expected_rows=item.expected_rows,
        expect_empty=item.expect_empty,
        require_columns=tuple(item.require_columns),
        forbidden_columns=tuple(item.forbidden_columns),
        allowed_values=tuple((c, tuple(v)) for c, v in item.allowed_values.items()),
        forbidden_values=pairs,
        required=item.required,
    )
