"""Domain -> policy facts: every predicate of ``rules/decl_policy.dl``, with provenance.

The passes run in this order, one concern each (``PASSES``): principals, roles, metrics,
dimensions, time ranges, release thresholds, schema (facts from
:func:`policystrata.lower.schema.parse_schema`), tenancy, join overrides, surfaces.

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

from collections.abc import Callable

from policystrata.facts import Const, FactSet, Provenance
from policystrata.model.calendar import DEFAULT_LABELS
from policystrata.model.domain import Domain, split_column
from policystrata.model.surfaces import DEFAULT_MODE, SURFACE_RANK, SURFACES

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


def metric_filter(expression: str, table: str) -> list[tuple[str, str, str, str, Const]]:
    """The guaranteed predicates of a metric expression's FILTER (WHERE ...) clause, parsed with
    the SQL lowering's predicate extractor: ``(table, column, op, vkind, value)``.

    >>> metric_filter("count(distinct t.id) filter (where t.escalated)", "t")
    [('t', 'escalated', '=', 'literal', True)]
    """
    from policystrata.lower.sql.adapter import exp, ident_name, parse_expression
    from policystrata.lower.sql.predicate_extract import GUARANTEED, extract_predicates

    tree = parse_expression(expression)
    if not isinstance(tree, exp.Filter):
        return []
    where = tree.expression
    cond = where.this if isinstance(where, exp.Where) else where
    out = []
    for p in extract_predicates(cond):
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


def metrics(d: Domain, fs: FactSet) -> None:
    """metric, metric_role, metric_alias, metric_table, metric_column, metric_agg, metric_filter,
    metric_grain, metric_cost, metric_time_column. A metric without ``allowed_roles`` admits
    every role."""
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
        agg = d.aggs.get(name)
        if m.columns is not None:
            for i, col in enumerate(m.columns):
                table, column = split_column(col, m.table)
                fs.add(
                    "metric_column",
                    name,
                    table,
                    column,
                    prov=d.where("policy", "metrics", name, "columns", i),
                )
        elif agg is not None and agg.column != "*":
            fs.add(
                "metric_column",
                name,
                agg.table,
                agg.column,
                prov=d.where("policy", "metrics", name, "expression"),
            )
        if agg is not None:
            fs.add(
                "metric_agg",
                name,
                *agg.as_tuple(),
                prov=d.where("policy", "metrics", name, "expression"),
            )
            for table, column, op, vkind, value in metric_filter(m.expression, m.table):
                fs.add(
                    "metric_filter",
                    name,
                    table,
                    column,
                    op,
                    vkind,
                    value,
                    prov=d.where("policy", "metrics", name, "expression"),
                )
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


def condition_predicates(text: str, table: str) -> list[tuple[str, str, str, str, Const]]:
    """The guaranteed predicates of a SQL condition: ``(table, column, op, vkind, value)``.

    >>> condition_predicates("deleted_at is null and t.kind <> 'spam'", "t")
    [('t', 'deleted_at', 'is_null', 'null', 'null'), ('t', 'kind', '!=', 'literal', 'spam')]
    """
    from policystrata.lower.sql.adapter import ident_name, parse_expression
    from policystrata.lower.sql.predicate_extract import GUARANTEED, extract_predicates

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
    """dimension, dimension_column, dimension_role, dimension_sensitive, dimension_cost.
    A dimension without ``allowed_roles`` admits every role."""
    for name, dim in d.policy.dimensions.items():
        here = d.where("policy", "dimensions", name)
        fs.add("dimension", name, prov=here)
        table, column = split_column(dim.column)
        fs.add(
            "dimension_column",
            name,
            table,
            column,
            prov=d.where("policy", "dimensions", name, "column"),
        )
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
    """time_range, time_range_bounds, time_range_calendar: the policy's ``time_ranges``, plus
    the default calendar anchored at ``as_of`` for labels the policy does not define."""
    as_of = d.policy.as_of.isoformat()
    for label, (start, end, calendar) in d.time_ranges().items():
        if label in d.policy.time_ranges:
            prov = d.where("policy", "time_ranges", label)
        else:
            line = d.line("policy", "as_of")
            prov = Provenance(
                "policy.yaml",
                line=line if "as_of" in d.policy.model_fields_set else None,
                note=f"default calendar at as_of {as_of}",
            )
        fs.add("time_range", label, prov=prov)
        fs.add("time_range_bounds", label, start, end, prov=prov)
        fs.add("time_range_calendar", label, calendar, prov=prov)


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
    """table, table_column, primary_key, fk, rls_*, table_grant: from schema.sql's parser."""
    fs.update(d.schema.facts)


def tenancy(d: Domain, fs: FactSet) -> None:
    """tenant_column: ``tenancy`` entries, else a column named tenant_id."""
    for table, column in d.tenant_columns().items():
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
    """surface, surface_rank, surface_mode, surface_version, responsible, accepts_obligation,
    emits_obligation, transition_obligation."""
    s = d.surfaces
    for name in SURFACES:
        contract = s.contracts.get(name)  # type: ignore[call-overload]
        here = (
            d.where("surfaces", "contracts", name)
            if contract
            else d.where("surfaces", "versions", name)
        )
        fs.add("surface", name, prov=here)
        fs.add(
            "surface_rank",
            name,
            SURFACE_RANK[name],
            prov=Provenance("surfaces", note="fixed pipeline order"),
        )
        version = s.versions.get(name)  # type: ignore[call-overload]
        if version is not None:
            fs.add("surface_version", name, version, prov=d.where("surfaces", "versions", name))
        if contract is None:
            fs.add(
                "surface_mode",
                name,
                DEFAULT_MODE[name],
                prov=Provenance("surfaces", note="default mode"),
            )
            continue
        fs.add(
            "surface_mode", name, contract.mode, prov=d.where("surfaces", "contracts", name, "mode")
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


PASSES: tuple[Pass, ...] = (
    principals,
    roles,
    metrics,
    declared_filters,
    dimensions,
    time_ranges,
    release,
    schema,
    tenancy,
    joins,
    surfaces,
)


def compile_domain(domain: Domain) -> FactSet:
    """All policy facts of a domain (run every pass of ``PASSES``)."""
    fs = FactSet()
    for p in PASSES:
        p(domain, fs)
    return fs


__all__ = ["DEFAULT_LABELS", "PASSES", "compile_domain"]
