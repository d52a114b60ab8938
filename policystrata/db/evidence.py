"""Real-row evidence for witnesses (evidence level ``real_db``).

:func:`collect_evidence` runs the canonical SQL and the layer's SQL under the same tenant context
(the transaction recipe of :mod:`policystrata.db.session`), plus the layer's SQL with RLS
bypassed (as ``strata_bypass``, rolled back), and reports:

- the values and row counts of both runs, and whether they match;
- ``bypass_layer``: the layer's SQL run as the RLS-bypass role (``strata_bypass``), when the
  server has one;
- ``cross_tenant``: rows of the layer's run whose tenant column (found through output lineage:
  a projected column that is a tenant column, directly or through an alias) carries another
  tenant's key;
- ``containment``: rows the RLS-bypassed run returns that the app run does not, i.e. rows RLS
  removed. A non-empty difference means the database layer contained the query.

SQL the gate refuses (:func:`policystrata.db.vet.vet_sql`) is never executed: its entry carries
``refused`` (the reason) and ``refusal`` (kind, construct, span) instead of rows; a query the
server cancelled or rejected carries ``error`` (sqlstate, message, kind).
Everything is JSON-friendly and deterministic (rows sorted, ``Decimal`` as text).

>>> ev = collect_evidence(db, canonical_sql, layer_sql, tenant="acme")   # doctest: +SKIP
>>> ev["level"], ev["canonical"]["rows"], ev["layer"]["rows"]             # doctest: +SKIP
('real_db', [[1200]], [[2400]])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policystrata.db.session import Database, QueryFailed, QueryResult
from policystrata.db.vet import Guard, UnvettedSQL, vet_sql

EVIDENCE_LEVEL = "real_db"
DEFAULT_TENANT_COLUMNS = ("tenant_id",)


_OUTPUTS: dict[tuple[Any, ...], list[str]] = {}
_OUTPUTS_SIZE = 1024


def tenant_output_columns(
    sql: str, columns: Sequence[str], tenant_columns: Iterable[str | tuple[str, str]]
) -> list[str]:
    """Output columns of ``sql`` that carry a tenant key (see :func:`_tenant_output_columns`);
    remembered per (SQL, columns, tenant columns) in a bounded memo."""
    tcols = tuple(tenant_columns)
    key = (sql, tuple(columns), tcols)
    hit = _OUTPUTS.get(key)
    if hit is None:
        hit = _tenant_output_columns(sql, columns, tcols)
        if len(_OUTPUTS) >= _OUTPUTS_SIZE:
            _OUTPUTS.pop(next(iter(_OUTPUTS)))
        _OUTPUTS[key] = hit
    return list(hit)


def _tenant_output_columns(
    sql: str, columns: Sequence[str], tenant_columns: Iterable[str | tuple[str, str]]
) -> list[str]:
    """Output columns of ``sql`` that carry a tenant key, by output lineage.

    ``tenant_columns`` holds column names (``tenant_id``) or ``(table, column)`` pairs. An output
    counts when its root projection is a plain column reference (through an alias or a cast)
    whose lineage (the SQL lowering's ``sql_output`` facts, through CTEs and derived tables)
    reaches only tenant columns, or, failing lineage, when the referenced column or the output
    itself is named like a tenant column. Computed outputs (``count(tenant_id)``) do not count.

    >>> tenant_output_columns("SELECT a.tenant_id AS owner, count(*) AS n FROM a GROUP BY 1",
    ...                       ["owner", "n"], ["tenant_id"])
    ['owner']
    >>> q = "WITH x AS (SELECT tenant_id AS t FROM accounts) SELECT x.t FROM x"
    >>> tenant_output_columns(q, ["t"], [("accounts", "tenant_id")])
    ['t']
    """
    names = {c.lower() for c in tenant_columns if isinstance(c, str)}
    pairs = {(t.lower(), c.lower()) for t, c in (p for p in tenant_columns if isinstance(p, tuple))}
    names |= {c for _t, c in pairs}
    found = {c for c in columns if c.lower() in names}
    try:
        from policystrata.sql.adapter import exp, parse_one

        tree = parse_one(sql)
    except Exception:  # unparseable here: names only
        return [c for c in columns if c in found]
    plain: dict[str, str] = {}  # output name -> referenced column name, for pass-through outputs
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if isinstance(select, exp.Select):
        for proj in select.expressions:
            inner = proj.this if isinstance(proj, exp.Alias) else proj
            while isinstance(inner, exp.Cast | exp.Paren):
                inner = inner.this
            if isinstance(inner, exp.Column):
                plain[proj.alias_or_name] = inner.name.lower()
    lineage: dict[str, set[tuple[str, str]]] = {}
    from policystrata.lower.sql import lower_sql

    for f in lower_sql("evidence", sql).facts.by_pred("sql_output"):
        lineage.setdefault(str(f.args[1]), set()).add((str(f.args[2]), str(f.args[3])))
    for out, ref in plain.items():
        bases = lineage.get(out)
        if bases:
            if all(
                (t.lower(), c.lower()) in pairs or (not pairs and c.lower() in names)
                for t, c in bases
            ):
                found.add(out)
        elif ref in names:
            found.add(out)
    return [c for c in columns if c in found]


def _run(
    db: Database,
    sql: str,
    tenant: str | None,
    params: Sequence[Any],
    *,
    bypass: bool,
    guard: Guard | None,
    timeout_ms: int | None,
) -> tuple[QueryResult | None, dict[str, Any]]:
    try:
        vetted = vet_sql(sql, relations=db.relations, guard=guard)
    except UnvettedSQL as e:
        return None, {"refused": e.reason, "refusal": e.to_json()}
    try:
        if bypass:
            res = db.run_bypass(vetted, tenant, params, timeout_ms=timeout_ms)
        else:
            res = db.run_app(vetted, tenant, params, timeout_ms=timeout_ms)
    except QueryFailed as e:
        return None, {"error": e.to_json()}
    return res, res.to_json()


def _multiset_minus(a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
    left = Counter(tuple(_hashable(v) for v in r) for r in a)
    left.subtract(Counter(tuple(_hashable(v) for v in r) for r in b))
    out: list[list[Any]] = []
    for row in a:
        key = tuple(_hashable(v) for v in row)
        if left[key] > 0:
            left[key] -= 1
            out.append(row)
    return out


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def same_rows(a: list[list[Any]], b: list[list[Any]]) -> bool:
    """The same rows, whatever the order of the rows and of the columns: two queries that
    compute the same thing may project their outputs in another order (``region, value`` vs
    ``value, region``), so each row is compared as the multiset of its values.

    >>> same_rows([[3, "apac"], [4, "na"]], [["na", 4], ["apac", 3]])
    True
    >>> same_rows([[3, "apac"]], [[6, "apac"]]), same_rows([[1]], [[1], [1]])
    (False, False)
    """

    def key(row: list[Any]) -> tuple[str, ...]:
        return tuple(sorted(repr(_hashable(v)) for v in row))

    return Counter(key(r) for r in a) == Counter(key(r) for r in b)


def cross_tenant_rows(
    result: QueryResult, tenant: str | None, columns: Sequence[str]
) -> dict[str, Any]:
    """Rows of ``result`` whose tenant columns carry a key other than ``tenant``."""
    idx = [result.columns.index(c) for c in columns]
    foreign: set[str] = set()
    rows = []
    for row in result.rows:
        keys = {row[i] for i in idx if row[i] is not None}
        other = {str(k) for k in keys if k != tenant}
        if other:
            foreign |= other
            rows.append(row)
    return {
        "checked": bool(idx),
        "columns": list(columns),
        "visible": bool(rows),
        "foreign_tenants": sorted(foreign),
        "row_count": len(rows),
        "rows": rows[:20],
    }


def collect_evidence(
    db: Database,
    canonical_sql: str | None,
    layer_sql: str,
    tenant: str | None,
    *,
    params: Sequence[Any] = (),
    canonical_params: Sequence[Any] = (),
    tenant_columns: Iterable[str] = DEFAULT_TENANT_COLUMNS,
    guard: Guard | None = None,
    timeout_ms: int | None = None,
    max_rows: int = 50,
) -> dict[str, Any]:
    """Evidence for one case; see the module docstring. ``guard`` defaults to the SQL
    lowering's read-only guard (tests may inject one)."""
    tcols = list(tenant_columns)
    ev: dict[str, Any] = {"level": EVIDENCE_LEVEL, "tenant": tenant, "database": db.name}
    canonical: QueryResult | None = None
    if canonical_sql is not None:
        canonical, ev["canonical"] = _run(
            db,
            canonical_sql,
            tenant,
            canonical_params,
            bypass=False,
            guard=guard,
            timeout_ms=timeout_ms,
        )
    layer, ev["layer"] = _run(
        db, layer_sql, tenant, params, bypass=False, guard=guard, timeout_ms=timeout_ms
    )
    if layer is None:
        return _truncate(ev, max_rows)
    if canonical is not None:
        ev["values_match"] = same_rows(canonical.rows, layer.rows)
        ev["row_count_delta"] = layer.row_count - canonical.row_count
    ev["cross_tenant"] = cross_tenant_rows(
        layer, tenant, tenant_output_columns(layer_sql, layer.columns, tcols)
    )
    if not db.bypass_available:
        reason = "the server has no BYPASSRLS role for the comparison"
        ev["containment"] = {"checked": False, "reason": reason}
        return _truncate(ev, max_rows)
    bypassed, bypass_json = _run(
        db, layer_sql, tenant, params, bypass=True, guard=guard, timeout_ms=timeout_ms
    )
    if bypassed is None:
        ev["containment"] = {"checked": False, **bypass_json}
    else:
        removed = _multiset_minus(bypassed.rows, layer.rows)
        ev["bypass_layer"] = bypass_json
        ev["containment"] = {
            "checked": True,
            "contained": bool(removed),
            "bypass_row_count": bypassed.row_count,
            "app_row_count": layer.row_count,
            "rows_removed": removed[:20],
            "rows_removed_count": len(removed),
        }
    return _truncate(ev, max_rows)


def _truncate(ev: dict[str, Any], max_rows: int) -> dict[str, Any]:
    for key in ("canonical", "layer", "bypass_layer"):
        part = ev.get(key)
        if isinstance(part, dict) and isinstance(part.get("rows"), list):
            rows = part["rows"]
            if len(rows) > max_rows:
                part["rows"] = rows[:max_rows]
                part["rows_truncated"] = True
    return ev


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
        from policystrata.sql.adapter import exp

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
