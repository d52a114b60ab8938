"""Real rows -> facts: what the database really returned, under the case's tenant context.

Two probes, both run through :mod:`policystrata.db` (only vetted read-only SQL, as the
non-privileged app role, in a read-only rolled-back transaction with a statement timeout):

1. **The case's SQL** (when the read-only guard accepts it): run as the app role and as the
   owner (RLS bypassed). Rows of another tenant in the app run (found through output lineage to a
   tenant column) become ``db_layer_foreign_rows``; rows RLS removed become
   ``db_rls_removed_rows`` (the database contained the query).
2. **A containment probe per tenant-owned table the SQL reads**: ``SELECT <tenant column>,
   count(*) FROM <table> GROUP BY 1`` under the tenant's session, as app and as owner. Keys of
   other tenants visible to the app -> ``db_probe_foreign_rows``; own rows the app cannot see ->
   ``db_probe_own_rows_hidden``. The probe SQL is built by us from identifiers, never from input.

The evidence dict (values, row counts, containment) is kept for the witness; only facts reach
the rules.

>>> rows_facts("c1", {"layer": {"rows": [[3]]}, "containment": {"contained": True}}, {}).to_lines()
'db_evidence("c1")\\ndb_rls_removed_rows("c1")\\n'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policystrata.db.evidence import collect_evidence
from policystrata.db.session import Database, QueryFailed
from policystrata.db.vet import UnvettedSQL, vet_sql
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
            vetted = vet_sql(probe)
            app = self.database.run_app(vetted, tenant, timeout_ms=self.timeout_ms)
            owner = self.database.run_owner(vetted, tenant, timeout_ms=self.timeout_ms)
        except (UnvettedSQL, QueryFailed) as exc:
            return {"table": table, "sql": probe, "error": str(exc)}
        app_keys = {str(r[0]): int(r[1]) for r in app.rows if r[0] is not None}
        owner_keys = {str(r[0]): int(r[1]) for r in owner.rows if r[0] is not None}
        return {
            "table": table,
            "sql": probe,
            "tenant": tenant,
            "app_rows_by_tenant": dict(sorted(app_keys.items())),
            "owner_rows_by_tenant": dict(sorted(owner_keys.items())),
            "foreign_visible": sorted(k for k in app_keys if k != tenant),
            "own_hidden": owner_keys.get(tenant, 0) > app_keys.get(tenant, 0),
        }


def rows_facts(
    case_id: str, evidence: dict[str, Any], probes: dict[str, dict[str, Any]]
) -> FactSet:
    """Lower collected evidence and table probes to ``db_*`` evidence facts."""
    facts = FactSet()
    executed = "layer" in evidence and "rows" in evidence.get("layer", {})
    if executed or probes:
        facts.add("db_evidence", case_id, prov=PROBE)
    for tenant in evidence.get("cross_tenant", {}).get("foreign_tenants", []):
        facts.add("db_layer_foreign_rows", case_id, str(tenant), prov=PROBE)
    if evidence.get("containment", {}).get("contained"):
        facts.add("db_rls_removed_rows", case_id, prov=PROBE)
    for table, probe in sorted(probes.items()):
        prov = Provenance("database", snippet=probe.get("sql"), note=f"probe of {table}")
        for other in probe.get("foreign_visible", []):
            facts.add("db_probe_foreign_rows", case_id, table, other, prov=prov)
        if probe.get("own_hidden"):
            facts.add("db_probe_own_rows_hidden", case_id, table, prov=prov)
    return facts
