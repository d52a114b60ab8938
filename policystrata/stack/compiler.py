"""Compiler layer: semantic IR -> PostgreSQL SQL, plus its cost estimate.

Join paths come from schema.sql foreign keys: from the metric's table the compiler follows
many-to-one edges (child -> parent) to the tables the dimensions and filters need. A table that
hangs below one of those (one-to-many, e.g. ``subscriptions`` for ``plan``) would multiply the
metric's rows, so it is LEFT JOINed as a derived table with one row per parent key (its latest
row: ``DISTINCT ON`` the key, newest first), scoped to the tenant inside. Only what the metric,
dimensions and filters need is joined. Every joined tenant-owned
table gets a predicate on its own tenant column, the time range's declared bounds go on the
metric's time column, and the row budget becomes LIMIT.

``style`` picks one of several legitimate lowerings: ``plain`` (qualified table names),
``aliases`` (short table aliases), ``cte`` (the scoped base table in a WITH clause) and
``params`` (tenants bound as ``$n`` parameters).

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> d = load_domain("support_saas")
>>> out = compile_query(d, ["acme"], parse_ir("ticket_count by region during last_month limit 100"))
>>> print(out.sql)
select accounts.region as region, count(distinct support_tickets.id) as value
from support_tickets
join accounts on accounts.id = support_tickets.account_id
where support_tickets.tenant_id = 'acme'
  and accounts.tenant_id = 'acme'
  and support_tickets.opened_at >= date '2026-05-01'
  and support_tickets.opened_at < date '2026-06-01'
group by accounts.region
limit 100
>>> out.cost_estimate
43
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field, replace

from policystrata.facts import Const
from policystrata.ir import SemanticQuery
from policystrata.ir.query import Filter
from policystrata.model import Domain, split_column

STYLES = ("plain", "aliases", "cte", "params")


@dataclass(frozen=True)
class CompilerKnobs:
    """How a (possibly faulty) compiler deviates from the canonical one."""

    drop_tenant_predicates: bool = False
    legacy_tenant_key: str | None = None  # scope every query through accounts.<this column>
    swap_tenant_account: bool = False  # compares the metric table's account_id with the tenant
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


@dataclass
class Compiled:
    sql: str
    params: dict[str, Const] = field(default_factory=dict)
    cost_estimate: int = 0


# ---- join planning -----------------------------------------------------------------------------


def _parents(domain: Domain, table: str) -> list[tuple[str, str, str]]:
    info = domain.schema.tables.get(table)
    if info is None:
        return []
    return [(fk.column, fk.ref_table, fk.ref_column) for fk in info.foreign_keys]


def _up_path(domain: Domain, start: str, goal: str) -> list[Join] | None:
    """Many-to-one path start -> ... -> goal (child to parent edges only), shortest first."""
    if start == goal:
        return []
    queue: deque[tuple[str, list[Join]]] = deque([(start, [])])
    seen = {start}
    while queue:
        table, path = queue.popleft()
        for col, parent, pcol in _parents(domain, table):
            if parent in seen or parent == "tenants":
                continue
            step = Join("join", parent, pcol, table, col)
            if parent == goal:
                return [*path, step]
            seen.add(parent)
            queue.append((parent, [*path, step]))
    return None


def plan_joins(domain: Domain, base: str, needed: list[str], knobs: CompilerKnobs) -> list[Join]:
    """Joins from ``base`` reaching every table of ``needed`` (in order, each once)."""
    joined = [base]
    joins: list[Join] = []

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
            add(up)
            continue
        # below the path: ``table`` references a table the path can reach (one-to-many)
        for col, parent, pcol in _parents(domain, table):
            reach = _up_path(domain, base, parent)
            if reach is None or parent == "tenants":
                continue
            add(reach)
            kind = "join" if knobs.inner_join_all else "left join"
            add([Join(kind, table, col, parent, pcol, below=True)])
            break
    return joins


# ---- SQL rendering -----------------------------------------------------------------------------


def _alias_map(tables: list[str], style: str) -> dict[str, str]:
    if style != "aliases":
        return {t: t for t in tables}
    out: dict[str, str] = {}
    for t in tables:
        short = "".join(part[0] for part in t.split("_"))
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
    """Collects the parts of one SELECT and renders them in a style."""

    def __init__(self, domain: Domain, tenants: list[str], style: str) -> None:
        self.domain = domain
        self.tenants = tenants
        self.style = style
        self.params: dict[str, Const] = {}

    def tenant_value(self) -> str:
        if self.style == "params":
            names = []
            for t in self.tenants:
                key = f"${len(self.params) + 1}"
                if t in self.params.values():
                    key = next(k for k, v in self.params.items() if v == t)
                else:
                    self.params[key] = t
                names.append(key)
            values = names
        else:
            values = [_lit(t) for t in self.tenants]
        if len(values) == 1:
            return f"= {values[0]}"
        return f"in ({', '.join(values)})"


def compile_query(
    domain: Domain,
    tenants: list[str],
    query: SemanticQuery,
    row_budget: int | None = None,
    knobs: CompilerKnobs | None = None,
    style: str = "plain",
) -> Compiled:
    """SQL for an authorized query, scoped to ``tenants`` (the validator's tenant obligation)."""
    knobs = knobs or CompilerKnobs()
    pol = domain.policy
    metric_name = pol.resolve_metric(query.metric)
    if metric_name is None:
        raise ValueError(f"cannot compile unknown metric {query.metric}")
    metric = pol.metrics[metric_name]
    agg = domain.aggs[metric_name]
    base = metric.table
    time_col = domain.metric_time_column(metric_name)

    # what each dimension / filter reads
    def dim_column(dim: str) -> tuple[str, str, bool]:
        """(table, column, is_month_bucket)"""
        if dim == "month" and time_col is not None:
            return time_col[0], time_col[1], True
        table, col = split_column(pol.dimensions[dim].column)
        return table, col, False

    needed: list[str] = []
    for dim in [*query.dimensions, *(f.dimension for f in query.filters)]:
        t = dim_column(dim)[0]
        if t not in needed:
            needed.append(t)
    if knobs.legacy_tenant_key and "accounts" not in needed:
        needed.append("accounts")
    joins = plan_joins(domain, base, needed, knobs)
    if knobs.fanout_table:
        extra = plan_joins(domain, base, [knobs.fanout_table], CompilerKnobs(inner_join_all=True))
        joined = {base, *(j.table for j in joins)}
        for j in extra:
            if j.table not in joined:
                # the fault joins the one-to-many table itself (no one-row-per-key derived
                # table), so every metric row is repeated once per child row: a real fan-out
                joins.append(replace(j, below=j.below and j.table != knobs.fanout_table))
                joined.add(j.table)
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

    tenant_cols = domain.tenant_columns()

    # select list
    select: list[str] = []
    group: list[str] = []
    for dim in query.dimensions:
        table, column, bucket = dim_column(dim)
        use(table, column)
        expr = f"date_trunc('month', {col(table, column)})" if bucket else col(table, column)
        select.append(f"{expr} as {dim}")
        group.append(expr)
    agg_table, agg_column = agg.table, agg.column
    if knobs.metric_column:
        agg_table, agg_column = split_column(knobs.metric_column, base)
    arg = "*" if agg_column == "*" else col(agg_table, agg_column)
    distinct = agg.distinct and not knobs.drop_distinct
    value = f"{agg.func}({'distinct ' if distinct else ''}{arg})"
    filt = _metric_filter(metric.expression)
    if filt:
        value += f" filter (where {col(base, filt)})"
    select.append(f"{value} as value")

    # predicates
    tenant_preds: list[tuple[str, str]] = []  # (table, predicate)
    if knobs.legacy_tenant_key:
        tenant_preds.append(
            ("accounts", f"{col('accounts', knobs.legacy_tenant_key)} {sql.tenant_value()}")
        )
    elif not knobs.drop_tenant_predicates:
        for t in tables:
            tc = tenant_cols.get(t)
            if t in below:
                continue  # scoped inside its derived table
            if tc is None:
                continue
            if (
                knobs.swap_tenant_account
                and t == base
                and "account_id" in domain.schema.tables[t].columns
            ):
                tc = "account_id"
            tenant_preds.append((t, f"{col(t, tc)} {sql.tenant_value()}"))
    time_preds: list[str] = []
    if query.time_range is not None and time_col is not None:
        bounds = domain.time_ranges().get(query.time_range)
        if bounds is not None:
            start, end, calendar = bounds
            if knobs.calendar_for_fiscal and calendar == "fiscal":
                start, end = calendar_bounds(query.time_range, start, end, pol.as_of)
            tc = col(*time_col)
            time_preds = [f"{tc} >= date '{start}'", f"{tc} < date '{end}'"]
    filter_preds = []
    for f in query.filters:
        target = dim_column(f.dimension)
        use(target[0], target[1])
        if f.op in ("=", "in") and tenant_cols.get(target[0]) == target[1]:
            # a filter on the tenant column: only the bound tenants can match, and another
            # tenant's id never goes into the SQL (an empty intersection matches nothing)
            held = tuple(v for v in f.values if v in tenants)
            if not held:
                filter_preds.append("1 = 0")
                continue
            f = Filter(dimension=f.dimension, op="in" if len(held) > 1 else "=", values=held)
        filter_preds.append(_filter_sql(f, target, col))

    limit = query.limit
    if row_budget is not None:
        limit = row_budget if limit is None else min(limit, row_budget)

    # render
    lines: list[str] = []
    base_preds = [p for t, p in tenant_preds if t == base] + (
        time_preds if time_col and time_col[0] == base else []
    )
    other_preds = [p for t, p in tenant_preds if t != base]
    if use_cte:
        inner = f"select * from {base}"
        if base_preds:
            inner += " where " + " and ".join(p.replace(f"{names[base]}.", "") for p in base_preds)
        lines.append(f"with {names[base]} as ({inner})")
        where = other_preds + [p for p in time_preds if p not in base_preds] + filter_preds
    else:
        where = [p for t, p in tenant_preds] + time_preds + filter_preds
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
        lines.append(f"limit {limit}")

    cost = metric.cost + max(1, (query.limit or 0) // 100)
    if not knobs.cost_ignores_dimensions:
        cost += sum(pol.dimensions[d].cost for d in query.dimensions if d in pol.dimensions)
    return Compiled(sql="\n".join(lines), params=dict(sql.params), cost_estimate=cost)


def _latest_rows(
    domain: Domain, j: Join, columns: list[str], alias: str, sql: _Sql, knobs: CompilerKnobs
) -> str:
    """``(select distinct on (key) key, cols from t where t.tenant = ... order by key, newest
    desc) as alias``: one row per parent key, so the join cannot multiply the metric's rows."""
    t = j.table
    info = domain.schema.tables[t]
    order = next(
        (c for c, typ in info.columns.items() if typ.startswith(("date", "timestamp"))),
        info.primary_key[0] if info.primary_key else j.column,
    )
    cols = [j.column, *(c for c in columns if c != j.column)]
    inner = f"select distinct on ({t}.{j.column}) " + ", ".join(f"{t}.{c}" for c in cols)
    inner += f" from {t}"
    tc = domain.tenant_columns().get(t)
    if tc is not None and not knobs.drop_tenant_predicates and not knobs.legacy_tenant_key:
        inner += f" where {t}.{tc} {sql.tenant_value()}"
    inner += f" order by {t}.{j.column}, {t}.{order} desc"
    return f"({inner}) as {alias}"


def _table_ref(table: str, names: dict[str, str], cte: bool) -> str:
    if cte or names[table] == table:
        return names[table]
    return f"{table} as {names[table]}"


def _metric_filter(expression: str) -> str | None:
    """The boolean column of ``count(...) filter (where t.c)``, if any."""
    low = expression.lower()
    if "filter" not in low or "where" not in low:
        return None
    inner = low.split("where", 1)[1].strip().rstrip(")").strip()
    return inner.rsplit(".", 1)[-1] if inner.replace("_", "").replace(".", "").isalnum() else None


def _filter_sql(f: Filter, target: tuple[str, str, bool], col: object) -> str:
    table, column, bucket = target
    ref = col(table, column)  # type: ignore[operator]
    if bucket:
        ref = f"date_trunc('month', {ref})"
    if f.op == "in":
        return f"{ref} in ({', '.join(_lit(v) for v in f.values)})"
    return f"{ref} {f.op} {_lit(f.values[0])}"
