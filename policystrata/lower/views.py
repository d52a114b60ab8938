"""A view's defining query -> its lineage facts (``view_*``, ``rules/decl_clickhouse.dl``).

A (materialized) view is a relation computed from base tables; a query that reads it instead of
its base table keeps the request's meaning only through that lineage. The view's SELECT is
lowered with the SQL lowering (in the schema's dialect), and each output column becomes:

- ``view_column(V, Col, T, TCol)``: a base column passed through (or computed from);
- ``view_state(V, Col, Func, Distinct, T, TCol)``: an aggregate *state* (ClickHouse
  ``countState()``, ``uniqExactState(user_id)``) of the aggregate ``Func`` (DISTINCT or not)
  over ``T.TCol`` (``*`` for rows): merging it (``countMerge``) computes that aggregate;
- ``view_bucket(V, Col, Unit, T, TCol)`` and ``view_bucket_zone(V, Col, ZKind, ZValue)``: a
  calendar bucket of a time column, and the zone it was taken in;
- ``view_source(V, T)`` for each base table it reads.

>>> q = ("SELECT project_id, toDate(event_time) AS day, countState() AS n, "
...      "uniqExactState(user_id) AS u FROM events GROUP BY project_id, day")
>>> cols = {"events": {"project_id": "text", "user_id": "text", "event_time": "timestamp"}}
>>> for f in view_facts("mv", q, cols, Provenance("schema.sql", line=9), dialect="clickhouse"):
...     print(f.render())
view_source("mv", "events")
view_column("mv", "project_id", "events", "project_id")
view_column("mv", "day", "events", "event_time")
view_bucket("mv", "day", "day", "events", "event_time")
view_bucket_zone("mv", "day", "default", "")
view_state("mv", "n", "count", false, "events", "*")
view_state("mv", "u", "count", true, "events", "user_id")
"""

from __future__ import annotations

from collections.abc import Mapping

from policystrata.facts import FactSet, Provenance
from policystrata.sql.adapter import SqlglotError, exp, ident_name, parse_one

#: The aggregate-state combinator suffix (ClickHouse ``countState``, ``uniqExactState``).
STATE_SUFFIX = "state"


def view_facts(
    view: str,
    query: str,
    columns: Mapping[str, Mapping[str, str]] | None,
    prov: Provenance,
    dialect: str = "postgres",
) -> FactSet:
    """The lineage facts of view ``view`` defined by ``query`` (see the module doc). A query the
    lowering cannot read yields only what could be read (never an error: the view is then a
    relation without known lineage)."""
    from policystrata.lower.sql import lower_sql
    from policystrata.lower.sql.aggregates import bucket_of, bucket_zone, zone_of

    out = FactSet()
    lowered = lower_sql("view", query, dialect=dialect, schema=dict(columns or {}) or None)
    for f in lowered.facts.by_pred("sql_reads"):
        if f.args[1] == "s0":
            out.add("view_source", view, str(f.args[3]), prov=prov)
    try:
        tree = parse_one(query, dialect)
    except SqlglotError:
        return out
    if not isinstance(tree, exp.Select):
        return out
    lineage: dict[str, list[tuple[str, str]]] = {}
    for f in lowered.facts.by_pred("sql_output"):
        lineage.setdefault(str(f.args[1]), []).append((str(f.args[2]), str(f.args[3])))
    for proj in tree.selects:
        name = ident_name(proj.alias_or_name)
        inner = proj.this if isinstance(proj, exp.Alias) else proj
        state = _state(inner, dialect)
        if state is not None:
            out.add("view_state", view, name, *state, prov=prov)
            continue
        for table, column in lineage.get(name, []):
            out.add("view_column", view, name, table, column, prov=prov)
        bucket = bucket_of(inner)
        if bucket is not None:
            unit, _arg = bucket
            for table, column in lineage.get(name, []):
                out.add("view_bucket", view, name, unit, table, column, prov=prov)
            zone = zone_of(bucket_zone(inner))
            if zone is not None:
                out.add("view_bucket_zone", view, name, *zone, prov=prov)
    return out


def _state(node: exp.Expr, dialect: str) -> tuple[str, bool, str, str] | None:
    """``(func, distinct, table, column)`` of the aggregate whose state ``node`` builds
    (``uniqExactState(user_id)`` -> count, distinct, over user_id), else None."""
    from policystrata.lower.sql.guard import function_name
    from policystrata.model.domain import parse_metric_agg

    if not isinstance(node, exp.AggFunc):
        return None
    name = str(node.this) if isinstance(node, exp.AnonymousAggFunc) else function_name(node)
    if not name.lower().endswith(STATE_SUFFIX) or len(name) <= len(STATE_SUFFIX):
        return None
    base = name[: -len(STATE_SUFFIX)]
    args = ", ".join(a.sql(dialect=dialect) for a in node.expressions)
    try:
        agg = parse_metric_agg(f"{base}({args})", "")
    except ValueError:
        return None
    return agg.func, agg.distinct, agg.table or _only_table(node), agg.column


def _only_table(node: exp.Expr) -> str:
    """The table of the query holding ``node`` when it reads exactly one (``countState()``)."""
    select = node.find_ancestor(exp.Select)
    tables = list(select.find_all(exp.Table)) if select is not None else []
    return ident_name(tables[0].this) if len(tables) == 1 else "*"
