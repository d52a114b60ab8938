"""Real rows -> facts: what the database really returned, under the case's tenant context.

Pure: the evidence is gathered by :class:`policystrata.db.evidence.RowProbe` (only SQL the gate
vetted, logged in as the non-privileged app role, in a read-only rolled-back transaction with
timeouts); this module turns it into facts. Two probes:

1. **The case's SQL** (when the read-only guard and the execution allow-list accept it): run as
   the app role and as the RLS-bypass role. Rows of another tenant in the app run (found through
   output lineage to a tenant column) become ``db_layer_foreign_rows``; rows RLS removed become
   ``db_rls_removed_rows`` (the database contained the query). Beside the canonical compiler's
   SQL for the same request (the reference, when the caller has one), rows that differ become
   ``db_reference_rows_differ``.
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

from typing import Any

from policystrata.facts import FactSet, Provenance

PROBE = Provenance("database", note="real rows, probed under the case's tenant")
REFERENCE = Provenance(
    "database", note="real rows of the SQL and of the canonical compiler's SQL, same tenant"
)


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
    if evidence.get("values_match") is False:
        facts.add("db_reference_rows_differ", case_id, prov=REFERENCE)
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
