"""Real rows -> facts: what the database really returned, under the case's tenant context.

Two probes, both run through :mod:`policystrata.db` (only SQL the gate vetted, logged in as
the non-privileged app role, in a read-only rolled-back transaction with timeouts):

1. **The case's SQL** (when the read-only guard and the execution allow-list accept it): run as
   the app role and as the RLS-bypass role. Rows of another tenant in the app run (found through
   output lineage to a tenant column) become ``db_layer_foreign_rows``; rows RLS removed become
   ``db_rls_removed_rows`` (the database contained the query).
2. **A containment probe per tenant-owned table the SQL reads**: ``SELECT <tenant column>,
   count(*) FROM <table> GROUP BY 1`` under the tenant's session, as app and with RLS bypassed.
   Keys of other tenants visible to the app -> ``db_probe_foreign_rows``; own rows the app cannot
   see -> ``db_probe_own_rows_hidden``. The probe SQL is built by us from identifiers, never from
   input.

What did not run is a fact too, never a silent pass: ``db_not_executed(case, kind, detail)``
(``rules/decl_execution.dl``) when the gate refused the SQL (its provenance is the refused
construct's span), when the server cancelled it (``timeout``), denied it (``denied``) or
rejected it (``error``), for the app run, the RLS-bypassed run or a probe.

The evidence dict (values, row counts, containment) is kept for the witness; only facts reach
the rules.

>>> rows_facts("c1", {"layer": {"rows": [[3]]}, "containment": {"contained": True}}, {}).to_lines()
'db_evidence("c1")\\ndb_rls_removed_rows("c1")\\n'
>>> ev = {"layer": {"error": {"sqlstate": "57014", "kind": "timeout",
...                           "message": "canceling statement due to statement timeout"}}}
>>> rows_facts("c1", ev, {}).to_lines()
'db_not_executed("c1", "timeout", "[57014] canceling statement due to statement timeout")\\n'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policystrata.db.evidence import collect_evidence
from policystrata.db.session import Database, QueryFailed
from policystrata.db.vet import UnvettedSQL
from policystrata.facts import FactSet, Provenance
from policystrata.lower.sql.adapter import exp

PROBE = Provenance("database", note="real rows, probed under the case's tenant")


@dataclass
class RowProbe:
    """Runs probes against one database; caches per (table, tenant) since data does not change."""

    database: Database
    tenant_columns: dict[str, str]
    timeout_ms: int = 5000
    _cache: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def case_evidence(
        self,
        sql: str,
        tenant: str,
        params: list[Any],
        reference_sql: str | None,
        reference_params: list[Any] | None = None,
    ) -> dict[str, Any]:
        """Evidence for the case's SQL (and the reference SQL, for comparison only)."""
        return collect_evidence(
            self.database,
            reference_sql,
            sql,
            tenant,
            params=params,
            canonical_params=reference_params or (),
            tenant_columns=sorted(set(self.tenant_columns.values())),
            timeout_ms=self.timeout_ms,
        )

    def table_probe(self, table: str, tenant: str) -> dict[str, Any]:
        """Tenant keys of ``table`` visible to the app vs the owner under ``tenant``'s session."""
        key = (table, tenant)
        if key not in self._cache:
            self._cache[key] = self._probe(table, tenant)
        return self._cache[key]

    def _probe(self, table: str, tenant: str) -> dict[str, Any]:
        column = self.tenant_columns[table]
        probe = (
            exp.select(exp.column(column, quoted=True), exp.func("count", exp.Star()))
            .from_(exp.to_table(table, quoted=True))
            .group_by(exp.Literal.number(1))
            .sql(dialect="postgres")
        )
        try:
            vetted = self.database.vet(probe)
            app = self.database.run_app(vetted, tenant, timeout_ms=self.timeout_ms)
            bypassed = (
                self.database.run_bypass(vetted, tenant, timeout_ms=self.timeout_ms)
                if self.database.bypass_available
                else None
            )
        except UnvettedSQL as exc:
            return {"table": table, "sql": probe, "refused": exc.reason}
        except QueryFailed as exc:
            return {"table": table, "sql": probe, "error": exc.to_json()}
        app_keys = {str(r[0]): int(r[1]) for r in app.rows if r[0] is not None}
        out: dict[str, Any] = {
            "table": table,
            "sql": probe,
            "tenant": tenant,
            "app_rows_by_tenant": dict(sorted(app_keys.items())),
            "foreign_visible": sorted(k for k in app_keys if k != tenant),
        }
        if bypassed is not None:
            all_keys = {str(r[0]): int(r[1]) for r in bypassed.rows if r[0] is not None}
            out["bypass_rows_by_tenant"] = dict(sorted(all_keys.items()))
            out["own_hidden"] = all_keys.get(tenant, 0) > app_keys.get(tenant, 0)
        return out


def rows_facts(
    case_id: str,
    evidence: dict[str, Any],
    probes: dict[str, dict[str, Any]],
    *,
    sql: str | None = None,
    source: Provenance | None = None,
) -> FactSet:
    """Lower collected evidence and table probes to ``db_*`` evidence facts, and what did not
    run to ``db_not_executed`` facts (``sql`` and ``source`` locate a refused construct)."""
    facts = FactSet()
    layer = evidence.get("layer", {})
    executed = "rows" in layer
    if executed or any("error" not in p and "refused" not in p for p in probes.values()):
        facts.add("db_evidence", case_id, prov=PROBE)
    if "refused" in layer:
        refusal = layer.get("refusal") or {}
        kind = "not_read_only" if refusal.get("kind") == "not_read_only" else "refused"
        facts.add(
            "db_not_executed",
            case_id,
            kind,
            str(layer["refused"]),
            prov=refused_at(sql, source, refusal.get("span")),
        )
    if "error" in layer:
        _failed(facts, case_id, layer["error"], "")
    containment = evidence.get("containment", {})
    if "error" in containment:
        _failed(facts, case_id, containment["error"], "the RLS-bypassed run: ")
    for tenant in evidence.get("cross_tenant", {}).get("foreign_tenants", []):
        facts.add("db_layer_foreign_rows", case_id, str(tenant), prov=PROBE)
    if evidence.get("containment", {}).get("contained"):
        facts.add("db_rls_removed_rows", case_id, prov=PROBE)
    for table, probe in sorted(probes.items()):
        prov = Provenance("database", snippet=probe.get("sql"), note=f"probe of {table}")
        if "error" in probe:
            _failed(facts, case_id, probe["error"], f"the containment probe of {table}: ")
        if "refused" in probe:
            detail = f"the containment probe of {table}: {probe['refused']}"
            facts.add("db_not_executed", case_id, "refused", detail, prov=prov)
        for other in probe.get("foreign_visible", []):
            facts.add("db_probe_foreign_rows", case_id, table, other, prov=prov)
        if probe.get("own_hidden"):
            facts.add("db_probe_own_rows_hidden", case_id, table, prov=prov)
    return facts


def _failed(facts: FactSet, case_id: str, error: dict[str, Any], what: str) -> None:
    """A run the server cancelled (timeout), denied or rejected."""
    kind = str(error.get("kind") or "error")
    detail = f"{what}[{error.get('sqlstate')}] {error.get('message')}"
    note = f"the server's answer (sqlstate {error.get('sqlstate')})"
    facts.add("db_not_executed", case_id, kind, detail, prov=Provenance("database", note=note))


def refused_at(sql: str | None, source: Provenance | None, span: Any = None) -> Provenance:
    """Provenance of a refused construct: the case's source with the construct's SQL span."""
    where = tuple(span) if isinstance(span, list | tuple) and len(span) == 2 else None
    snippet = sql[where[0] : where[1]] if sql is not None and where is not None else None
    if source is None:
        return Provenance("sql", span=where, snippet=snippet, note="not executed")
    return Provenance(
        source.source,
        line=source.line,
        column=source.column,
        span=where,
        snippet=snippet,
        note="not executed",
    )
