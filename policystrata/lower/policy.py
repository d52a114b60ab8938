"""Domain -> policy facts: every predicate of ``rules/decl_policy.dl``, with provenance.

The passes run in this order, one concern each (``PASSES``): principals, roles, metrics,
dimensions, time ranges, release thresholds, schema (facts from
:func:`policystrata.lower.schema.schema_facts`), tenancy, join overrides, surfaces, and the
facts a caller added (the scan config's gate inputs).

>>> from policystrata.model import load_domain
>>> facts = compile_domain(load_domain("support_saas"))
>>> from policystrata.facts import Fact
>>> f = Fact("metric_agg", ("ticket_count", "count", True, "support_tickets", "id"))
>>> f in facts, str(facts.provenance(f)[0])
(True, 'policy.yaml:32')
>>> [x.render() for x in facts.by_pred("time_range_bounds") if x.args[0] == "last_fiscal_month"]
['time_range_bounds("last_fiscal_month", "2026-04-27", "2026-05-25")']
"""

from __future__ import annotations

import re
from collections.abc import Callable

from policystrata.facts import Const, FactSet, Provenance
from policystrata.layers import LAYER_RANK, LAYERS, MODES
from policystrata.lower.schema import schema_facts
from policystrata.model.calendar import DEFAULT_LABELS
from policystrata.model.domain import Domain, split_column

Pass = Callable[[Domain, FactSet], None]


def principals(d: Domain, fs: FactSet) -> None:
    """principal, principal_role, principal_tenant."""
    for name, p in d.policy.principals.items():
        fs.add("principal", name, prov=d.where("policy", "principals", name))
        fs.add("principal_role", name, p.role, prov=d.where("policy", "principals", name, "role"))
        for i, tenant in enumerate(p.tenant_ids):
            fs.add(
                "principal_tenant",
                name,
                tenant,
                prov=d.where("policy", "principals", name, "tenant_ids", i),
            )


def roles(d: Domain, fs: FactSet) -> None:
    """role, role_metric, role_dimension, role_time_range, role_max_rows, role_max_cost,
    role_aggregate_only."""
    for name, r in d.policy.roles.items():
        fs.add("role", name, prov=d.where("policy", "roles", name))
        for key, pred, items in (
            ("allowed_metrics", "role_metric", r.allowed_metrics),
            ("allowed_dimensions", "role_dimension", r.allowed_dimensions),
            ("allowed_time_ranges", "role_time_range", r.allowed_time_ranges),
        ):
            for i, item in enumerate(items):
                fs.add(pred, name, item, prov=d.where("policy", "roles", name, key, i))
        if r.max_rows is not None:
            fs.add(
                "role_max_rows", name, r.max_rows, prov=d.where("policy", "roles", name, "max_rows")
            )
        if r.max_cost is not None:
            fs.add(
                "role_max_cost", name, r.max_cost, prov=d.where("policy", "roles", name, "max_cost")
            )
        if r.aggregate_only:
            fs.add(
                "role_aggregate_only", name, prov=d.where("policy", "roles", name, "aggregate_only")
            )


_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")


def _ident(name: str) -> str:
    return name if _PLAIN_NAME.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def metric_aggregates(
    d: Domain, name: str
) -> tuple[list[tuple[str, bool, str, str]], list[tuple[str, str, str, str, Const]]]:
    """The metric's aggregates ``(func, distinct, table, column)`` and the guaranteed literal
    predicates of their FILTERs ``(table, column, op, vkind, value)``, read by the SQL lowering
    itself from ``SELECT <canonical expression> FROM <its tables>``: a metric is understood
    exactly as the same expression in a query's SQL is (one place for what an aggregate is).

    >>> from policystrata.model import load_domain
    >>> aggs, filters = metric_aggregates(load_domain("support_saas"), "escalated_tickets")
    >>> aggs
    [('count', True, 'support_tickets', 'id')]
    >>> filters
    [('support_tickets', 'escalated', '=', 'literal', True)]
    """
    from policystrata.lower.sql import lower_sql

    m = d.policy.metrics[name]
    info = d.metric_exprs.get(name)
    if info is None or info.sql is None or info.aggregates == 0:
        return [], []
    tables = [m.table, *(t for t, _ in info.columns if t is not None and t != m.table)]
    froms = ", ".join(_ident(t) for t in dict.fromkeys(tables))
    lowered = lower_sql("metric", f"SELECT {info.sql} AS value FROM {froms}", schema=d.schema)
    aggs: list[tuple[str, bool, str, str]] = []
    filters: list[tuple[str, str, str, str, Const]] = []
    for f in lowered.facts.by_pred("sql_agg"):
        _c, scope, _id, func, distinct, table, column = f.args
        if (table, column) == ("*", "*"):  # count(*): rows of the metric's table
            table = m.table
        row = (str(func), bool(distinct), str(table), str(column))
        if scope == "s0" and row not in aggs:
            aggs.append(row)
    for f in lowered.facts.by_pred("sql_agg_filter_pred"):
        _c, scope, _id, table, column, op, vkind, value, strength = f.args
        row5 = (str(table), str(column), str(op), str(vkind), value)
        guaranteed = strength == "guaranteed" and vkind in ("literal", "null")
        if scope == "s0" and guaranteed and row5 not in filters:
            filters.append(row5)
    return aggs, filters


def metrics(d: Domain, fs: FactSet) -> None:
    """metric, metric_role, metric_alias, metric_table, metric_column, metric_agg, metric_filter,
    metric_uses_metric, metric_expression_unknown, metric_grain, metric_cost,
    metric_time_column. A metric without
    ``allowed_roles`` admits every role; without ``columns`` (or with ``[]``) it reads the
    columns its expression names."""
    for name, m in d.policy.metrics.items():
        here = d.where("policy", "metrics", name)
        fs.add("metric", name, prov=here)
        if m.allowed_roles is None:
            for role in d.policy.roles:
                fs.add("metric_role", name, role, prov=here)
        for i, role in enumerate(m.allowed_roles or ()):
            fs.add(
                "metric_role",
                name,
                role,
                prov=d.where("policy", "metrics", name, "allowed_roles", i),
            )
        for i, alias in enumerate(m.aliases):
            fs.add(
                "metric_alias", alias, name, prov=d.where("policy", "metrics", name, "aliases", i)
            )
        fs.add("metric_table", name, m.table, prov=d.where("policy", "metrics", name, "table"))
        at_expr = d.where("policy", "metrics", name, "expression")
        if m.columns:
            for i, col in enumerate(m.columns):
                table, column = split_column(col, m.table)
                fs.add(
                    "metric_column",
                    name,
                    table,
                    column,
                    prov=d.where("policy", "metrics", name, "columns", i),
                )
        else:
            for table, column in d.metric_columns(name):
                fs.add("metric_column", name, table, column, prov=at_expr)
        for other in d.metric_refs(name):
            fs.add("metric_uses_metric", name, other, prov=at_expr)
        aggs, filters = metric_aggregates(d, name)
        for agg in aggs:
            fs.add("metric_agg", name, *agg, prov=at_expr)
        for table, column, op, vkind, value in filters:
            fs.add("metric_filter", name, table, column, op, vkind, value, prov=at_expr)
        unknown = d.metric_unknown(name)
        if unknown is not None:
            fs.add("metric_expression_unknown", name, unknown, prov=at_expr)
        if m.grain is not None:
            fs.add("metric_grain", name, m.grain, prov=d.where("policy", "metrics", name, "grain"))
        fs.add("metric_cost", name, m.cost, prov=d.where("policy", "metrics", name, "cost"))
        time_col = d.metric_time_column(name)
        if time_col is not None:
            if m.time_column:
                prov = d.where("policy", "metrics", name, "time_column")
            else:
                prov = Provenance(
                    "schema.sql",
                    line=d.schema_table_line(time_col[0]),
                    note=f"default time column of {name}: first date/timestamp column",
                )
            fs.add("metric_time_column", name, *time_col, prov=prov)


def declared_filters(d: Domain, fs: FactSet) -> None:
    """metric_required_filter, table_default_filter: the guaranteed predicates of each metric's
    ``filters`` and each table's ``tables.<t>.filters`` (parsed like a WHERE clause; an
    unqualified column belongs to the metric's / the table's own table)."""
    for name, m in d.policy.metrics.items():
        for i, text in enumerate(m.filters):
            prov = d.where("policy", "metrics", name, "filters", i)
            for table, column, op, vkind, value in condition_predicates(text, m.table):
                fs.add("metric_required_filter", name, table, column, op, vkind, value, prov=prov)
    for table, spec in d.policy.tables.items():
        for i, text in enumerate(spec.filters):
            prov = d.where("policy", "tables", table, "filters", i)
            for t, column, op, vkind, value in condition_predicates(text, table):
                if t == table:
                    fs.add("table_default_filter", table, column, op, vkind, value, prov=prov)


def dimension_units(d: Domain, fs: FactSet) -> None:
    """dimension_time_unit: the calendar unit of a dimension written as a truncation
    (``date_trunc('month', invoices.invoice_date)`` -> month)."""
    from policystrata.lower.sql.aggregates import bucket_of
    from policystrata.sql.adapter import parse_expression

    for name, dim in d.policy.dimensions.items():
        try:
            bucket = bucket_of(parse_expression(dim.column))
        except Exception:  # a column spec that is no SQL expression: not a truncation
            continue
        if bucket is not None:
            prov = d.where("policy", "dimensions", name, "column")
            fs.add("dimension_time_unit", name, bucket[0], prov=prov)


def condition_predicates(text: str, table: str) -> list[tuple[str, str, str, str, Const]]:
    """The guaranteed predicates of a SQL condition: ``(table, column, op, vkind, value)``.

    >>> condition_predicates("deleted_at is null and t.kind <> 'spam'", "t")
    [('t', 'deleted_at', 'is_null', 'null', 'null'), ('t', 'kind', '!=', 'literal', 'spam')]
    """
    from policystrata.lower.sql.predicate_extract import GUARANTEED, extract_predicates
    from policystrata.sql.adapter import ident_name, parse_expression

    out = []
    for p in extract_predicates(parse_expression(text)):
        if p.strength == GUARANTEED and p.vkind in ("literal", "null"):
            qual = p.column.args.get("table")
            out.append(
                (
                    ident_name(qual) if qual else table,
                    ident_name(p.column.this),
                    p.op,
                    p.vkind,
                    p.value,
                )
            )
    return out


def dimensions(d: Domain, fs: FactSet) -> None:
    """dimension, dimension_column (each base column of its column or expression),
    dimension_expression, dimension_role, dimension_sensitive, dimension_cost. A dimension
    without ``allowed_roles`` admits every role."""
    for name, dim in d.policy.dimensions.items():
        here = d.where("policy", "dimensions", name)
        fs.add("dimension", name, prov=here)
        at_column = d.where("policy", "dimensions", name, "column")
        info = d.dimension_exprs.get(name)
        if info is not None:
            for table, column in info.columns:
                if table is not None:
                    fs.add("dimension_column", name, table, column, prov=at_column)
            if not info.plain and info.sql is not None:
                fs.add("dimension_expression", name, info.sql, prov=at_column)
        if dim.allowed_roles is None:
            for role in d.policy.roles:
                fs.add("dimension_role", name, role, prov=here)
        for i, role in enumerate(dim.allowed_roles or ()):
            fs.add(
                "dimension_role",
                name,
                role,
                prov=d.where("policy", "dimensions", name, "allowed_roles", i),
            )
        if dim.sensitive:
            fs.add(
                "dimension_sensitive", name, prov=d.where("policy", "dimensions", name, "sensitive")
            )
        fs.add("dimension_cost", name, dim.cost, prov=d.where("policy", "dimensions", name, "cost"))


def time_ranges(d: Domain, fs: FactSet) -> None:
    """time_range, time_range_bounds, time_range_calendar, time_range_timezone,
    time_range_unbounded: the policy's ``time_ranges``, plus the default calendar anchored at
    ``as_of`` (the published calendar without it) for labels the policy does not define, and
    the unbounded labels (``all_time``)."""
    as_of = d.policy.as_of.isoformat()
    for label, (start, end, calendar) in d.time_ranges().items():
        if label in d.policy.time_ranges:
            prov = d.where("policy", "time_ranges", label)
        else:
            line = d.line("policy", "as_of")
            prov = Provenance(
                "policy.yaml",
                line=line if "as_of" in d.policy.model_fields_set else None,
                note=f"published calendar (as_of {as_of}, to date 2026-06-24)"
                if d.published_calendar
                else f"default calendar at as_of {as_of}",
            )
        fs.add("time_range", label, prov=prov)
        fs.add("time_range_bounds", label, start, end, prov=prov)
        fs.add("time_range_calendar", label, calendar, prov=prov)
        tz = d.time_range_timezone(label)
        if tz is not None:
            fs.add("time_range_timezone", label, tz, prov=prov)
    for label in d.unbounded_time_ranges():
        prov = Provenance("policy.yaml", note="unbounded: no time predicate")
        fs.add("time_range", label, prov=prov)
        fs.add("time_range_unbounded", label, prov=prov)


def release(d: Domain, fs: FactSet) -> None:
    """release_min_cohort."""
    rel = d.policy.release
    if rel is not None and rel.min_cohort_size is not None:
        fs.add(
            "release_min_cohort",
            rel.min_cohort_size,
            prov=d.where("policy", "release", "min_cohort_size"),
        )


def schema(d: Domain, fs: FactSet) -> None:
    """table, table_column, primary_key, fk, rls_*, table_grant, table_partial: from
    schema.sql's parser (without schema.sql: the tables and columns the policy names), and
    schema_known when the domain has a schema.sql."""
    fs.update(schema_facts(d.schema))
    if d.schema_known:
        fs.add("schema_known", "schema.sql", prov=Provenance("schema.sql", line=1))


def tenancy(d: Domain, fs: FactSet) -> None:
    """tenant_column: the scan config's tenancy (every column it names for a table; it wins),
    ``tenancy`` entries, else a column named tenant_id; canonical_predicate: the scan config's
    canonical predicates that are not tenant columns."""
    scan = d.scan_tenancy
    if scan is not None:
        for table, cols in scan.tenant_columns.items():
            for column, where in cols:
                fs.add("tenant_column", table, column, prov=where)
        for p in scan.canonical:
            fs.add(
                "canonical_predicate",
                p.key,
                p.table,
                p.column,
                p.op,
                p.vkind,
                p.value,
                prov=p.where,
            )
    for table, column in d.tenant_columns().items():
        if scan is not None and table in scan.tenant_columns:
            continue
        if table in d.policy.tenancy:
            prov = d.where("policy", "tenancy", table)
        else:
            prov = Provenance(
                "schema.sql", line=d.schema_table_line(table), note="default tenant column"
            )
        fs.add("tenant_column", table, column, prov=prov)


def joins(d: Domain, fs: FactSet) -> None:
    """fk facts for ``joins`` overrides (the many side first; one_to_one adds both directions)."""
    for i, j in enumerate(d.policy.joins):
        a, b = split_column(j.from_), split_column(j.to)
        prov = d.where("policy", "joins", i)
        if j.cardinality in ("many_to_one", "one_to_one"):
            fs.add("fk", a[0], a[1], b[0], b[1], prov=prov)
        if j.cardinality in ("one_to_many", "one_to_one"):
            fs.add("fk", b[0], b[1], a[0], a[1], prov=prov)


def surfaces(d: Domain, fs: FactSet) -> None:
    """layer, layer_rank, layer_mode, layer_version, responsible, accepts_obligation,
    emits_obligation, transition_obligation (surfaces.yaml)."""
    s = d.surfaces
    for name in LAYERS:
        contract = s.contracts.get(name)  # type: ignore[call-overload]
        here = (
            d.where("surfaces", "contracts", name)
            if contract
            else d.where("surfaces", "versions", name)
        )
        fs.add("layer", name, prov=here)
        fs.add(
            "layer_rank",
            name,
            LAYER_RANK[name],
            prov=Provenance("layers", note="the fixed pipeline order, policystrata/layers.py"),
        )
        version = s.versions.get(name)  # type: ignore[call-overload]
        if version is not None:
            fs.add("layer_version", name, version, prov=d.where("surfaces", "versions", name))
        if contract is None:
            fs.add(
                "layer_mode",
                name,
                MODES[name],
                prov=Provenance("layers", note="the default mode, policystrata/layers.py"),
            )
            continue
        fs.add(
            "layer_mode", name, contract.mode, prov=d.where("surfaces", "contracts", name, "mode")
        )
        for key, pred in (
            ("responsibilities", "responsible"),
            ("accepts_obligations", "accepts_obligation"),
            ("emits_obligations", "emits_obligation"),
        ):
            for i, item in enumerate(getattr(contract, key)):
                fs.add(pred, name, item, prov=d.where("surfaces", "contracts", name, key, i))
    for i, ob in enumerate(s.transition_obligations):
        fs.add("transition_obligation", ob, prov=d.where("surfaces", "transition_obligations", i))


def extra(d: Domain, fs: FactSet) -> None:
    """Facts the caller added to the domain (the scan config's gate inputs)."""
    if d.extra_facts is not None:
        fs.update(d.extra_facts)


PASSES: tuple[Pass, ...] = (
    principals,
    roles,
    metrics,
    declared_filters,
    dimension_units,
    dimensions,
    time_ranges,
    release,
    schema,
    tenancy,
    joins,
    surfaces,
    extra,
)


def compile_domain(domain: Domain) -> FactSet:
    """All policy facts of a domain (run every pass of ``PASSES``)."""
    fs = FactSet()
    for p in PASSES:
        p(domain, fs)
    return fs


__all__ = ["DEFAULT_LABELS", "PASSES", "compile_domain"]
