"""Compiler layer: semantic IR -> PostgreSQL SQL, plus its cost estimate.

Join paths come from schema.sql foreign keys: from the metric's table the compiler follows
many-to-one edges (child -> parent) to the tables the dimensions and filters need. A table that
hangs below one of those (one-to-many, e.g. ``subscriptions`` for ``plan``) would multiply the
metric's rows, so it is LEFT JOINed as a derived table with one row per parent key (its latest
row: ``DISTINCT ON`` the key, newest first). Only what the metric, dimensions and filters need is
joined.

Tenant scope reaches every tenant-owned table the query reads: a table with its own tenant
column gets a predicate on it; a table without one is scoped through its parents, along the
foreign-key chain to the nearest table that has a tenant column (joined, or in the ``exists``
style an ``EXISTS`` on the chain). The time range's declared bounds go on the metric's time
column, and the row budget becomes LIMIT. A dimension over a date / timestamp column (or a
``date_trunc`` expression) is a time dimension: it buckets the metric's own time column at the
request's grain (month by default).

``style`` picks one of several legitimate lowerings: ``plain`` (qualified table names),
``aliases`` (short table aliases), ``cte`` (the base table in a WITH clause), ``params``
(tenants and the limit bound as ``$n`` parameters), ``exists`` (tables joined only for tenant
scope become EXISTS) and ``fetch`` (``FETCH FIRST n ROWS ONLY``).

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> d = load_domain("support_saas")
>>> out = compile_query(d, ["acme"], parse_ir("ticket_count by region during last_month limit 100"))
>>> print(out.sql)
select accounts.region as region, count(distinct support_tickets.id) as value
from support_tickets
join accounts on accounts.id = support_tickets.account_id
where accounts.tenant_id = 'acme'
  and support_tickets.opened_at >= date '2026-05-01'
  and support_tickets.opened_at < date '2026-06-01'
group by accounts.region
limit 100
>>> out.cost_estimate
43
>>> print(compile_query(d, ["acme"], parse_ir("net_revenue during last_month limit 10"),
...     style="exists").sql)
select sum(invoices.net_amount_cents) as value
from invoices
where exists (select 1 from subscriptions as scope_1 where scope_1.id = invoices.subscription_id
    and exists (select 1 from accounts as scope_2 where scope_2.id = scope_1.account_id
    and scope_2.tenant_id = 'acme'))
  and invoices.invoice_date >= date '2026-05-01'
  and invoices.invoice_date < date '2026-06-01'
limit 10
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field, replace

from policystrata.facts import Const
from policystrata.ir import SemanticQuery
from policystrata.ir.query import Filter
from policystrata.model import Domain, split_column

STYLES = ("plain", "aliases", "cte", "params", "exists", "fetch")
TIME_TYPES = ("date", "timestamp", "timestamptz", "datetime")


class CompileError(ValueError):
    """The compiler cannot build SQL for this request on this domain (e.g. no join path)."""


@dataclass(frozen=True)
class CompilerKnobs:
    """How a (possibly faulty) compiler deviates from the canonical one."""

    drop_tenant_predicates: bool = False
    legacy_tenant_key: tuple[str, str] | None = None  # (table, column) scoped instead of tenancy
    swap_tenant_key: bool = False  # compares each tenant-column table's key with the tenant
    metric_column: str | None = None  # aggregate this column instead of the metric's own
    drop_distinct: bool = False
    fanout_table: str | None = None  # joins this one-to-many table although nothing needs it
    inner_join_all: bool = False  # INNER instead of LEFT for tables below the join path
    calendar_for_fiscal: bool = False  # calendar-month bounds for fiscal labels
    cost_ignores_dimensions: bool = False


@dataclass(frozen=True)
class Join:
    kind: str  # "join" | "left join"
    table: str
    column: str  # column of ``table``
    other: str  # table already joined
    other_column: str
    below: bool = False  # one-to-many from the path: joined as a one-row-per-key derived table


@dataclass(frozen=True)
class Target:
    """What a dimension or filter reads: a column, bucketed to ``unit`` for a time dimension."""

    table: str
    column: str
    unit: str | None = None


@dataclass
class Compiled:
    sql: str
    params: dict[str, Const] = field(default_factory=dict)
    cost_estimate: int = 0


# ---- schema helpers ----------------------------------------------------------------------------


def _parents(domain: Domain, table: str) -> list[tuple[str, str, str]]:
    """(column, parent table, parent column) of the table's foreign keys, NOT NULL ones first."""
    info = domain.schema.tables.get(table)
    if info is None:
        return []
    fks = [(fk.column, fk.ref_table, fk.ref_column) for fk in info.foreign_keys]
    return sorted(fks, key=lambda f: f[0] not in info.not_null)


def tenant_roots(domain: Domain) -> set[str]:
    """Tables whose tenant column is their own primary key (``tenants.id``): the tenant itself,
    never a join target for a question about the tenant's data."""
    out = set()
    for table, col in domain.tenant_columns().items():
        info = domain.schema.tables.get(table)
        if info is not None and info.primary_key == [col]:
            out.add(table)
    return out


def _up_path(domain: Domain, start: str, goal: str) -> list[Join] | None:
    """Many-to-one path start -> ... -> goal (child to parent edges only), shortest first."""
    if start == goal:
        return []
    roots = tenant_roots(domain) - {goal}
    queue: deque[tuple[str, list[Join]]] = deque([(start, [])])
    seen = {start}
    while queue:
        table, path = queue.popleft()
        for col, parent, pcol in _parents(domain, table):
            if parent in seen or parent in roots:
                continue
            step = Join("join", parent, pcol, table, col)
            if parent == goal:
                return [*path, step]
            seen.add(parent)
            queue.append((parent, [*path, step]))
    return None


def _keep_rows(domain: Domain, path: list[Join]) -> list[Join]:
    """An up path joined without dropping rows: a step along a nullable foreign key (and every
    step after it, whose other side may then be NULL) is a LEFT JOIN."""
    out: list[Join] = []
    left = False
    for j in path:
        info = domain.schema.tables.get(j.other)
        left = left or (info is not None and j.other_column not in info.not_null)
        out.append(replace(j, kind="left join") if left else j)
    return out


def tenant_chain(domain: Domain, table: str) -> list[Join] | None:
    """The foreign-key path from ``table`` up to the nearest table with a tenant column (empty
    when ``table`` has one itself; None when no such path exists)."""
    tenant_cols = domain.tenant_columns()
    if table in tenant_cols:
        return []
    roots = tenant_roots(domain)
    queue: deque[tuple[str, list[Join]]] = deque([(table, [])])
    seen = {table}
    while queue:
        t, path = queue.popleft()
        for col, parent, pcol in _parents(domain, t):
            if parent in seen or parent in roots:
                continue
            step = Join("join", parent, pcol, t, col)
            if parent in tenant_cols:
                return [*path, step]
            seen.add(parent)
            queue.append((parent, [*path, step]))
    return None


def plan_joins(domain: Domain, base: str, needed: list[str], knobs: CompilerKnobs) -> list[Join]:
    """Joins from ``base`` reaching every table of ``needed`` (in order, each once)."""
    joined = [base]
    joins: list[Join] = []
    roots = tenant_roots(domain)

    def add(path: list[Join]) -> None:
        for j in path:
            if j.table not in joined:
                joined.append(j.table)
                joins.append(j)

    for table in needed:
        if table in joined:
            continue
        up = _up_path(domain, base, table)
        if up is not None:
            add(_keep_rows(domain, up))
            continue
        # below the path: ``table`` references a table the path can reach (one-to-many)
        for col, parent, pcol in _parents(domain, table):
            if parent in roots:
                continue
            reach = _up_path(domain, base, parent)
            if reach is None:
                continue
            add(_keep_rows(domain, reach))
            kind = "join" if knobs.inner_join_all else "left join"
            add([Join(kind, table, col, parent, pcol, below=True)])
            break
        else:
            raise CompileError(f"no join path from {base} to {table} along foreign keys")
    return joins


def time_type(domain: Domain, table: str, column: str) -> bool:
    typ = domain.schema.column_type(table, column) or ""
    return typ.startswith(TIME_TYPES)


def dimension_target(domain: Domain, dim: str, metric: str | None, grain: str | None) -> Target:
    """What dimension ``dim`` reads for a query on ``metric``: its column; a time dimension
    (a ``date_trunc`` expression, or a date / timestamp column) buckets the metric's own time
    column (the dimension's column when the metric has none) at the expression's unit, else the
    request's grain, else month."""
    from policystrata.lower.sql.aggregates import bucket_of
    from policystrata.sql.adapter import exp, ident_name, parse_expression

    spec = domain.policy.dimensions[dim].column
    unit: str | None = None
    try:
        node = parse_expression(spec)
    except Exception:  # an unreadable column spec: read it as table.column
        node = None
    bucket = bucket_of(node) if node is not None else None
    if bucket is not None and isinstance(bucket[1], exp.Column):
        unit, col = bucket[0], bucket[1]
        table, column = ident_name(col.args.get("table")), ident_name(col.this)
    else:
        table, column = split_column(spec)
        if time_type(domain, table, column):
            unit = grain or "month"
    if unit is not None and metric is not None:
        own = domain.metric_time_column(metric)
        if own is not None:
            table, column = own
    return Target(table, column, unit)


# ---- SQL rendering -----------------------------------------------------------------------------


def _alias_map(tables: list[str], style: str) -> dict[str, str]:
    if style != "aliases":
        return {t: t for t in tables}
    out: dict[str, str] = {}
    for t in tables:
        short = "".join(part[0] for part in t.split("_") if part) or "t"
        name, i = short, 2
        while name in out.values():
            name, i = f"{short}{i}", i + 1
        out[t] = name
    return out


def _lit(value: Const) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def calendar_bounds(label: str, start: str, end: str, as_of: dt.date) -> tuple[str, str]:
    """The calendar reading of a fiscal label (what a compiler that ignores the fiscal calendar
    emits): calendar months instead of 4-week fiscal months."""
    first = as_of.replace(day=1)
    if "month" in label:
        prev = (first - dt.timedelta(days=1)).replace(day=1)
        return prev.isoformat(), first.isoformat()
    if "ytd" in label or "year" in label:
        return dt.date(as_of.year, 1, 1).isoformat(), as_of.isoformat()
    s = dt.date.fromisoformat(start).replace(day=1)
    return s.isoformat(), end


class _Sql:
    """Collects the parameters of one statement and renders tenant values in a style."""

    def __init__(self, domain: Domain, tenants: list[str], style: str) -> None:
        self.domain = domain
        self.tenants = tenants
        self.style = style
        self.params: dict[str, Const] = {}

    def bind(self, value: Const) -> str:
        if self.style != "params":
            return _lit(value)
        for k, v in self.params.items():
            if v == value and type(v) is type(value):
                return k
        key = f"${len(self.params) + 1}"
        self.params[key] = value
        return key

    def tenant_value(self, table: str | None = None, column: str | None = None) -> str:
        # a bound parameter carries the tenant id as the application holds it (text); a
        # literal is written in the column's type
        values = [
            self.bind(t if self.style == "params" else self.typed(t, table, column))
            for t in self.tenants
        ]
        if len(values) == 1:
            return f"= {values[0]}"
        return f"in ({', '.join(values)})"

    def typed(self, tenant: str, table: str | None, column: str | None) -> Const:
        """The tenant id as a literal of the column's type (an integer column gets 4821)."""
        typ = ""
        if table and column:
            typ = self.domain.schema.column_type(table, column) or ""
        if typ.startswith(("int", "bigint", "smallint", "serial", "bigserial")):
            try:
                return int(tenant)
            except ValueError:
                return tenant
        return tenant


def compile_query(
    domain: Domain,
    tenants: list[str],
    query: SemanticQuery,
    row_budget: int | None = None,
    knobs: CompilerKnobs | None = None,
    style: str = "plain",
) -> Compiled:
    """SQL for an authorized query, scoped to ``tenants`` (the validator's tenant obligation).
    Raises :class:`CompileError` when the domain gives no way to build it."""
    knobs = knobs or CompilerKnobs()
    pol = domain.policy
    plan = _plan(domain, query, knobs, style)
    metric_name, base, targets, joins, exists_chains = plan
    metric = pol.metrics[metric_name]
    agg = domain.aggs[metric_name]
    time_col = domain.metric_time_column(metric_name)
    tenant_cols = domain.tenant_columns()

    tables = [base, *(j.table for j in joins)]
    sql = _Sql(domain, tenants, style)
    names = _alias_map(tables, style)
    use_cte = style == "cte"
    if use_cte:
        names[base] = f"scoped_{base}"
    below = {j.table for j in joins if j.below}
    for t in below:
        names[t] = f"latest_{t}"
    below_cols: dict[str, list[str]] = {t: [] for t in below}

    def use(table: str, column: str) -> None:
        cols = below_cols.get(table)
        if cols is not None and column not in cols:
            cols.append(column)

    def col(table: str, column: str) -> str:
        return f"{names[table]}.{column}"

    def expr(t: Target) -> str:
        ref = col(t.table, t.column)
        return f"date_trunc('{t.unit}', {ref})" if t.unit else ref

    # select list
    select: list[str] = []
    group: list[str] = []
    for dim in query.dimensions:
        target = targets[dim]
        use(target.table, target.column)
        select.append(f"{expr(target)} as {dim}")
        group.append(expr(target))
    agg_table, agg_column = agg.table, agg.column
    if knobs.metric_column:
        agg_table, agg_column = split_column(knobs.metric_column, base)
    if agg_table not in names:
        raise CompileError(f"the metric's column {agg_table}.{agg_column} is not on its table")
    arg = "*" if agg_column == "*" else col(agg_table, agg_column)
    distinct = agg.distinct and not knobs.drop_distinct
    value = f"{agg.func}({'distinct ' if distinct else ''}{arg})"
    filt = _metric_filter(metric.expression, names, base)
    if filt:
        value += f" filter (where {filt})"
    select.append(f"{value} as value")

    # tenant predicates
    tenant_preds: list[tuple[str, str]] = []  # (table, predicate)
    if knobs.legacy_tenant_key:
        lt, lc = knobs.legacy_tenant_key
        tenant_preds.append((lt, f"{col(lt, lc)} {sql.tenant_value(lt, lc)}"))
    elif not knobs.drop_tenant_predicates:
        for t in tables:
            tc = tenant_cols.get(t)
            if t in below or tc is None:
                continue  # a derived table is scoped inside; others through their parents
            ref, value = col(t, tc), sql.tenant_value(t, tc)
            if knobs.swap_tenant_key:
                key = domain.schema.tables[t].primary_key
                if len(key) == 1 and key[0] != tc:
                    typ = domain.schema.column_type(t, key[0]) or ""
                    ref, value = col(t, key[0]), sql.tenant_value(t, key[0])
                    if not typ.startswith(("text", "varchar", "char", "uuid")):
                        # the bug runs: it compares the key's text with the tenant id
                        ref, value = f"{ref}::text", sql.tenant_value()
            tenant_preds.append((t, f"{ref} {value}"))
    exists_preds = [
        _exists_chain(domain, names[start], chain, sql, knobs) for start, chain in exists_chains
    ]

    # time window
    time_preds: list[str] = []
    if query.time_range is not None and time_col is not None:
        bounds = domain.time_ranges().get(query.time_range)
        if bounds is not None:
            start, end, calendar = bounds
            if knobs.calendar_for_fiscal and calendar == "fiscal":
                start, end = calendar_bounds(query.time_range, start, end, pol.as_of)
            tc = col(*time_col)
            time_preds = [f"{tc} >= date '{start}'", f"{tc} < date '{end}'"]

    # the IR's filters
    filter_preds = []
    for f in query.filters:
        target = targets[f.dimension]
        use(target.table, target.column)
        if f.op in ("=", "in") and tenant_cols.get(target.table) == target.column:
            # a filter on the tenant column: only the bound tenants can match, and another
            # tenant's id never goes into the SQL (an empty intersection matches nothing)
            held = tuple(v for v in f.values if v in tenants)
            if not held:
                filter_preds.append("1 = 0")
                continue
            f = Filter(dimension=f.dimension, op="in" if len(held) > 1 else "=", values=held)
        filter_preds.append(_filter_sql(f, expr(target), sql))

    # predicates the policy declares the compiler adds: the metric's own filters, and each read
    # table's default filters (a soft delete)
    declared = [_condition_sql(text, names, base) for text in metric.filters]
    for t in tables:
        spec = pol.tables.get(t)
        if spec is not None and t not in below:
            declared += [_condition_sql(text, names, t) for text in spec.filters]
    filter_preds += declared

    limit = query.limit
    if row_budget is not None:
        limit = row_budget if limit is None else min(limit, row_budget)

    # render
    lines: list[str] = []
    base_preds = [p for t, p in tenant_preds if t == base] + (
        time_preds if time_col and time_col[0] == base else []
    )
    if use_cte:
        inner = f"select * from {base}"
        if base_preds:
            inner += " where " + " and ".join(p.replace(f"{names[base]}.", "") for p in base_preds)
        lines.append(f"with {names[base]} as ({inner})")
        where = [p for t, p in tenant_preds if t != base] + exists_preds
        where += [p for p in time_preds if p not in base_preds] + filter_preds
    else:
        where = [p for _, p in tenant_preds] + exists_preds + time_preds + filter_preds
    lines.append("select " + ", ".join(select))
    lines.append(f"from {_table_ref(base, names, use_cte)}")
    for j in joins:
        if j.below:
            ref = _latest_rows(domain, j, below_cols[j.table], names[j.table], sql, knobs)
        else:
            ref = _table_ref(j.table, names, False)
        lines.append(f"{j.kind} {ref} on {col(j.table, j.column)} = {col(j.other, j.other_column)}")
    if where:
        lines.append("where " + "\n  and ".join(where))
    if group:
        lines.append("group by " + ", ".join(group))
    if limit is not None:
        if style == "fetch":
            lines.append(f"fetch first {limit} rows only")
        elif style == "params":
            lines.append(f"limit {sql.bind(limit)}")
        else:
            lines.append(f"limit {limit}")

    cost = metric.cost + max(1, (query.limit or 0) // 100)
    if not knobs.cost_ignores_dimensions:
        cost += sum(pol.dimensions[d].cost for d in query.dimensions if d in pol.dimensions)
    return Compiled(sql="\n".join(lines), params=dict(sql.params), cost_estimate=cost)


Plan = tuple[str, str, dict[str, Target], list[Join], list[tuple[str, list[Join]]]]


def _plan(domain: Domain, query: SemanticQuery, knobs: CompilerKnobs, style: str) -> Plan:
    """(metric, base table, dimension targets, joins, EXISTS chains) of a query."""
    pol = domain.policy
    metric_name = pol.resolve_metric(query.metric)
    if metric_name is None:
        raise CompileError(f"cannot compile unknown metric {query.metric}")
    if metric_name not in domain.aggs:
        raise CompileError(f"metric {metric_name} has no aggregate the compiler can read")
    base = pol.metrics[metric_name].table
    if base not in domain.schema.tables:
        raise CompileError(f"metric table {base} is not in schema.sql")
    targets: dict[str, Target] = {}
    for dim in [*query.dimensions, *(f.dimension for f in query.filters)]:
        if dim not in pol.dimensions:
            raise CompileError(f"unknown dimension {dim}")
        targets[dim] = dimension_target(domain, dim, metric_name, query.grain)

    needed: list[str] = []
    for t in targets.values():
        if t.table not in needed:
            needed.append(t.table)
    if knobs.legacy_tenant_key and knobs.legacy_tenant_key[0] not in needed:
        needed.append(knobs.legacy_tenant_key[0])
    joins = plan_joins(domain, base, needed, knobs)

    # tenant scope through parents: every table read without its own tenant column reaches one
    # along its foreign-key chain (joined, or as EXISTS in the exists style)
    exists_chains: list[tuple[str, list[Join]]] = []
    if not knobs.legacy_tenant_key:
        for table in [base, *(j.table for j in joins if not j.below)]:
            chain = tenant_chain(domain, table)
            if not chain:
                continue  # its own tenant column, or (None) not tenant-owned
            joined = {base, *(j.table for j in joins)}
            # the tenancy chain is joined as inner joins: a row without a parent on it belongs
            # to no tenant (the rules' kept_join knows a nullable FK that is the only way there)
            on_chain = {(j.table, j.column, j.other, j.other_column) for j in chain}
            joins = [
                replace(j, kind="join")
                if (j.table, j.column, j.other, j.other_column) in on_chain and not j.below
                else j
                for j in joins
            ]
            if all(j.table in joined for j in chain):
                continue
            if style == "exists":
                start = next(i for i, j in enumerate(chain) if j.table not in joined)
                exists_chains.append((chain[start].other, chain[start:]))
            else:
                joins.extend(j for j in chain if j.table not in joined)

    if knobs.fanout_table:
        extra = plan_joins(domain, base, [knobs.fanout_table], CompilerKnobs(inner_join_all=True))
        joined = {base, *(j.table for j in joins)}
        for j in extra:
            if j.table not in joined:
                # the fault joins the one-to-many table itself (no one-row-per-key derived
                # table), so every metric row is repeated once per child row: a real fan-out
                joins.append(replace(j, below=j.below and j.table != knobs.fanout_table))
                joined.add(j.table)
    return metric_name, base, targets, joins, exists_chains


def planned_tables(domain: Domain, query: SemanticQuery, style: str = "plain") -> list[str]:
    """The tables the canonical compiler reads for ``query`` (joined, derived or in EXISTS);
    raises :class:`CompileError` like :func:`compile_query`."""
    _m, base, _t, joins, chains = _plan(domain, query, CompilerKnobs(), style)
    out = [base, *(j.table for j in joins)]
    for _start, chain in chains:
        out.extend(j.table for j in chain if j.table not in out)
    return out


def _exists_chain(
    domain: Domain, outer: str, chain: list[Join], sql: _Sql, knobs: CompilerKnobs
) -> str:
    """``exists (select 1 from parent as scope_1 where scope_1.key = outer.fk and ...)`` up the
    chain, the last parent filtered on its tenant column."""
    tenant_cols = domain.tenant_columns()
    parts: list[str] = []
    prev = outer
    for i, j in enumerate(chain, start=1):
        alias = f"scope_{i}"
        cond = f"{alias}.{j.column} = {prev}.{j.other_column}"
        if i == len(chain) and not knobs.drop_tenant_predicates:
            tc = tenant_cols[j.table]
            cond += f"\n    and {alias}.{tc} {sql.tenant_value(j.table, tc)}"
        parts.append(f"exists (select 1 from {j.table} as {alias} where {cond}")
        prev = alias
    text = parts[0]
    for depth, p in enumerate(parts[1:], start=1):
        text += "\n" + "    " * depth + "and " + p
    return text + ")" * len(parts)


def _latest_rows(
    domain: Domain, j: Join, columns: list[str], alias: str, sql: _Sql, knobs: CompilerKnobs
) -> str:
    """``(select distinct on (key) key, cols from t where t.tenant = ... order by key, newest
    desc) as alias``: one row per parent key, so the join cannot multiply the metric's rows."""
    t = j.table
    info = domain.schema.tables[t]
    order = next(
        (c for c, typ in info.columns.items() if typ.startswith(TIME_TYPES)),
        info.primary_key[0] if info.primary_key else j.column,
    )
    cols = [j.column, *(c for c in columns if c != j.column)]
    inner = f"select distinct on ({t}.{j.column}) " + ", ".join(f"{t}.{c}" for c in cols)
    inner += f" from {t}"
    tc = domain.tenant_columns().get(t)
    if tc is not None and not knobs.drop_tenant_predicates and not knobs.legacy_tenant_key:
        inner += f" where {t}.{tc} {sql.tenant_value(t, tc)}"
    inner += f" order by {t}.{j.column}, {t}.{order} desc"
    return f"({inner}) as {alias}"


def _table_ref(table: str, names: dict[str, str], cte: bool) -> str:
    if cte or names[table] == table:
        return names[table]
    return f"{table} as {names[table]}"


def _condition_sql(text: str, names: dict[str, str], table: str) -> str:
    """A declared SQL condition with its columns qualified by the query's names for their
    tables (an unqualified column belongs to ``table``)."""
    from policystrata.sql.adapter import parse_expression

    return str(parse_expression(text).transform(_qualify(names, table)).sql(dialect="postgres"))


def _qualify(names: dict[str, str], default: str):  # type: ignore[no-untyped-def]
    from policystrata.sql.adapter import exp, ident_name

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            table = ident_name(node.args.get("table")) or default
            return exp.column(ident_name(node.this), table=names.get(table, table))
        return node

    return rename


def _metric_filter(expression: str, names: dict[str, str], base: str) -> str | None:
    """The condition of the metric expression's ``FILTER (WHERE ...)``, its columns qualified
    with the query's names for their tables (unqualified ones belong to the metric's table)."""
    from policystrata.sql.adapter import exp, parse_expression

    tree = parse_expression(expression)
    if not isinstance(tree, exp.Filter):
        return None
    where = tree.expression
    cond = where.this if isinstance(where, exp.Where) else where
    return str(cond.transform(_qualify(names, base)).sql(dialect="postgres"))


def _filter_sql(f: Filter, ref: str, sql: _Sql) -> str:
    if f.op == "in":
        return f"{ref} in ({', '.join(sql.bind(v) for v in f.values)})"
    return f"{ref} {f.op} {sql.bind(f.values[0])}"
