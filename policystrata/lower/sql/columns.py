"""Pass ``columns``: every column reference, resolved to the base-table columns it reads.

``sql_column_ref(C, S, Table, Column)`` for each base column a scope references where it
influences the result: WHERE, JOIN, GROUP BY, HAVING, ORDER BY, window and aggregate arguments,
and the select list, also through CTE and derived-table columns. The select list of a CTE /
derived table (or of a UNION ALL branch of one) is not a use by itself: its columns count where
the consuming query uses them, so ``with c as (select * from accounts) select region from c``
reads ``region`` only (a DISTINCT, UNION or INTERSECT / EXCEPT compares whole rows, so there
every selected column counts). A whole-row reference (``row_to_json(a)``, ``a.*``) reads every
column of the source. ``sql_unresolved_column(C, S, Column)`` when a reference cannot be resolved
(ambiguous without a schema). ``sql_alias_column(C, S, Alias, Column)`` for each column of a
source alias referenced by name (what the lineage rules follow). Resolving also finds which
subqueries are correlated. ``sql_column_use(C, S, Table, Column, Use)`` says how each such
reference is used: ``select``, ``group_by``, ``order_by``, ``window``, ``aggregate`` (an
aggregate's argument), ``predicate`` (the column side of a WHERE / ON / HAVING predicate, which
``sql_pred`` / ``sql_col_eq`` describe) or ``condition`` (inside a condition in any other way,
e.g. ``lower(email) = 'x'``).

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "with c as (select customer_email e, region from accounts) select e from c")
>>> for f in r.facts.by_pred("sql_column_ref"): print(f.render())
sql_column_ref("q", "s0", "accounts", "customer_email")
>>> r = lower_sql("q", "select count(*) from accounts a where a.tenant_id = 'x' group by a.region")
>>> for f in r.facts.by_pred("sql_column_use"): print(f.render())
sql_column_use("q", "s0", "accounts", "tenant_id", "predicate")
sql_column_use("q", "s0", "accounts", "region", "group_by")
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import extract_predicates
from policystrata.lower.sql.scopes import (
    base_columns,
    expr_lineage,
    projection_for,
    resolve,
    source_names,
    star_sources,
    whole_row,
)
from policystrata.sql.adapter import exp, ident_name


def columns(ctx: Ctx) -> None:
    """Emit ``sql_column_ref`` / ``sql_unresolved_column`` for every scope, and
    ``sql_alias_column`` for every source column referenced by name."""
    _alias_columns(ctx)
    for info in ctx.scopes:
        node = info.scope.expression
        select_list = list(node.expressions) if isinstance(node, exp.Select) else []
        passthrough = _passes_rows_through(ctx, info)
        pred_columns = _predicate_columns(node)
        for col in info.scope.columns:
            if isinstance(col.this, exp.Star) or _in_nested_query(col, node):
                continue
            if passthrough and _inside_any(col, select_list):
                continue
            use = _use_of(col, node, pred_columns)
            if whole_row(ctx, info, col) is not None:
                for t, c in sorted(expr_lineage(ctx, info, col)):
                    ctx.emit("sql_column_ref", info.id, t, c, node=col)
                    ctx.emit("sql_column_use", info.id, t, c, use, node=col)
                continue
            bases = base_columns(ctx, info, col)
            if not bases and not col.args.get("table"):
                proj = projection_for(info, ident_name(col.this))
                if proj is not None and proj is not col:  # ORDER BY / GROUP BY an output alias
                    bases = expr_lineage(ctx, info, proj)
                    if bases or not proj.find(exp.Column):
                        for t, c in sorted(bases):
                            ctx.emit("sql_column_ref", info.id, t, c, node=col)
                            ctx.emit("sql_column_use", info.id, t, c, use, node=col)
                        continue
            if not bases and resolve(ctx, info, col) is None:
                # no source owns it; a column of a computed output (count(*) n) resolves but
                # has no base lineage, and that is not "unresolved"
                ctx.emit("sql_unresolved_column", info.id, ident_name(col.this), node=col)
            for t, c in sorted(bases):
                ctx.emit("sql_column_ref", info.id, t, c, node=col)
                ctx.emit("sql_column_use", info.id, t, c, use, node=col)
        if passthrough:
            continue
        for proj in select_list:
            if proj.find(exp.Star) is not None:
                for t, c in sorted(expr_lineage(ctx, info, proj)):
                    ctx.emit("sql_column_ref", info.id, t, c, node=proj)
                    ctx.emit("sql_column_use", info.id, t, c, "select", node=proj)


_CLAUSE_USE = {
    "expressions": "select",
    "group": "group_by",
    "order": "order_by",
    "distinct": "select",
    "qualify": "condition",
    "windows": "window",
}
_CONDITIONS = ("where", "having", "on")


def _predicate_columns(node: exp.Expr) -> set[int]:
    """ids of the column nodes that are a side of an atomic predicate of the scope's WHERE,
    HAVING or join ON conditions."""
    if not isinstance(node, exp.Select):
        return set()
    conds: list[exp.Expr] = []
    for key in ("where", "having"):
        c = node.args.get(key)
        if c is not None:
            conds.append(c.this)
    for join in node.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            conds.append(on)
    out: set[int] = set()
    for cond in conds:
        for p in extract_predicates(cond):
            out.add(id(p.column))
            if isinstance(p.value_node, exp.Column):
                out.add(id(p.value_node))
    return out


def _use_of(col: exp.Column, scope_node: exp.Expr, pred_columns: set[int]) -> str:
    """How a column reference is used in its scope's query (see the module docstring)."""
    if id(col) in pred_columns:
        return "predicate"
    child: exp.Expr = col
    parent = col.parent
    inside_agg = inside_window = False
    while parent is not None and parent is not scope_node:
        if isinstance(parent, exp.Window):
            inside_window = True
        elif isinstance(parent, exp.AggFunc):
            inside_agg = True
        child, parent = parent, parent.parent
    if inside_window:
        return "window"
    if inside_agg:
        return "aggregate"
    key = (child.arg_key or "") if parent is scope_node else ""
    if key in _CONDITIONS or isinstance(child, exp.Join):
        return "condition"
    return _CLAUSE_USE.get(key, "condition")


def _alias_columns(ctx: Ctx) -> None:
    """``sql_alias_column(C, S, Alias, Column)``: a column of source Alias of scope S referenced
    anywhere (also from a correlated subquery, and by a star of S's select list)."""
    seen: set[tuple[str, str, str]] = set()
    for info in ctx.scopes:
        node = info.scope.expression
        for col in info.scope.columns:
            if isinstance(col.this, exp.Star) or _in_nested_query(col, node):
                continue
            hit = resolve(ctx, info, col)
            if hit is not None:
                key = (hit[1].id, hit[0], ident_name(col.this))
                if key not in seen:
                    seen.add(key)
                    ctx.emit("sql_alias_column", *key, node=col)
        if not isinstance(node, exp.Select):
            continue
        sources = star_sources(info)
        for alias, (_, src) in sources.items():
            for cname in source_names(ctx, src):
                key = (info.id, alias, cname)
                if cname != "*" and key not in seen:
                    seen.add(key)
                    ctx.emit("sql_alias_column", *key, node=node)


def _passes_rows_through(ctx: Ctx, info: ScopeInfo) -> bool:
    """The scope's select list only feeds its consumer by name: a SELECT (not DISTINCT) whose
    rows are read by name."""
    node = info.scope.expression
    if not isinstance(node, exp.Select) or node.args.get("distinct") is not None:
        return False
    return _read_by_name(ctx, info)


def _read_by_name(ctx: Ctx, info: ScopeInfo) -> bool:
    """A CTE / derived table, or a branch of a UNION ALL that is read by name."""
    if info.kind in ("cte", "derived"):
        return True
    if info.kind != "union_branch" or info.parent is None:
        return False
    parent = next(s for s in ctx.scopes if s.id == info.parent)
    union = parent.scope.expression
    if not isinstance(union, exp.Union) or union.args.get("distinct"):
        return False
    return _read_by_name(ctx, parent)


def _in_nested_query(col: exp.Column, node: exp.Expr) -> bool:
    """The reference sits inside a subquery of the scope's query: that subquery's scope
    resolves it (sqlglot also lists a subquery's unqualified columns in the enclosing scope, as
    candidates for correlation)."""
    p = col.parent
    while p is not None and p is not node:
        if isinstance(p, exp.Query):
            return True
        p = p.parent
    return False


def _inside_any(node: exp.Expr, roots: list[exp.Expr]) -> bool:
    p: exp.Expr | None = node
    while p is not None:
        if any(p is r for r in roots):
            return True
        p = p.parent
    return False
