"""Pass ``aggregates``: aggregate calls, GROUP BY, DISTINCT.

``sql_agg(C, S, Id, Func, Distinct, Table, Column)``: one fact per base column an aggregate's
argument reads (``"*"``, ``"*"`` for ``count(*)`` / ``count(1)`` / ``count(a.*)``); Func is
lowercase (count, sum, avg, min, max, ...); Id is ``<scope>.a<n>``.
``sql_agg_arg(C, S, Id, Alias)`` for each source alias of the scope whose columns the argument
reads. ``sql_agg_filter(C, S, Id)`` when it has a FILTER (WHERE ...) clause, and
``sql_agg_filter_pred(C, S, Id, Table, Column, Op, VKind, Value, Strength)`` for each predicate
of that clause (on the base column it reads; ops, values and strength as for ``sql_pred``).
``sql_group_by(C, S, Table, Column)`` for each base column grouped by (positional
``GROUP BY 1`` and output aliases are followed); ``sql_distinct(C, S)`` for SELECT DISTINCT,
``sql_distinct_on(C, S, Table, Column)`` for DISTINCT ON. ``sql_group_bucket(C, S, Unit, Table,
Column)`` for a GROUP BY item that truncates a base column to a calendar unit
(``date_trunc('month', t.d)``, also through a positional or output-alias reference and casts).

>>> from policystrata.lower.sql import lower_sql
>>> q = "select count(distinct t.id) from support_tickets t"
>>> [f.render() for f in lower_sql("q", q).facts.by_pred("sql_agg")]
['sql_agg("q", "s0", "s0.a1", "count", true, "support_tickets", "id")']
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import extract_predicates
from policystrata.lower.sql.scopes import (
    Base,
    base_columns,
    expr_lineage,
    local_nodes,
    output_names,
    param_name,
    resolve,
    whole_row,
)
from policystrata.sql.adapter import exp, function_name

_NAMES = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}


def agg_name(node: exp.Expr) -> str:
    for t, name in _NAMES.items():
        if type(node) is t:
            return name
    return function_name(node)


def aggregates(ctx: Ctx) -> None:
    """Emit aggregate, GROUP BY and DISTINCT facts for every SELECT scope."""
    for info in ctx.scopes:
        node = info.scope.expression
        if not isinstance(node, exp.Select):
            continue
        n = 0
        roots: list[exp.Expr] = list(node.expressions)
        for key in ("having", "order"):
            if node.args.get(key) is not None:
                roots.append(node.args[key])
        for root in roots:
            for agg in local_nodes(info, root):
                if not isinstance(agg, exp.AggFunc):
                    continue
                n += 1
                _emit_agg(ctx, info, agg, f"{info.id}.a{n}")
        group = node.args.get("group")
        if group is not None:
            for g in group.expressions:
                for t, c in sorted(_group_lineage(ctx, info, node, g)):
                    ctx.emit("sql_group_by", info.id, t, c, node=g)
                bucket = _bucket(_group_item(ctx, info, node, g))
                if bucket is not None:
                    unit, arg = bucket
                    for t, c in sorted(expr_lineage(ctx, info, arg)):
                        ctx.emit("sql_group_bucket", info.id, unit, t, c, node=g)
        distinct = node.args.get("distinct")
        if distinct is not None:
            on = distinct.args.get("on")
            if on is None:
                ctx.emit("sql_distinct", info.id, node=node)
            else:
                for e in on.expressions if isinstance(on, exp.Tuple) else [on]:
                    for t, c in sorted(_group_lineage(ctx, info, node, e)):
                        ctx.emit("sql_distinct_on", info.id, t, c, node=e)


def _emit_agg(ctx: Ctx, info: ScopeInfo, agg: exp.Expr, agg_id: str) -> None:
    func = agg_name(agg)
    arg = agg.this
    distinct = isinstance(arg, exp.Distinct)
    if isinstance(arg, exp.Distinct):
        args = list(arg.expressions)
    else:
        args = [arg] if arg is not None else []
    if not isinstance(agg, exp.Anonymous):
        args += list(agg.expressions)
    bases: set[Base] = set()
    star = False
    for a in args:
        if a is None:
            continue
        if isinstance(a, exp.Star) or (
            func == "count"
            and isinstance(a, exp.Column)
            and (isinstance(a.this, exp.Star) or whole_row(ctx, info, a) is not None)
        ):
            star = True  # count(*), count(a.*), count(a): counts rows
            continue
        found = expr_lineage(ctx, info, a)
        if not found and func == "count" and not a.find(exp.Column):
            star = True  # count(1): counts rows
        bases |= found
    if star or (not args and func == "count"):
        bases.add(("*", "*"))
    if not bases:
        bases.add(("?", "?"))
    for t, c in sorted(bases):
        ctx.emit("sql_agg", info.id, agg_id, func, distinct, t, c, node=agg)
    aliases: set[str] = set()
    for a in args:
        if a is None or isinstance(a, exp.Star):
            continue
        for col in a.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                continue
            hit = resolve(ctx, info, col)
            if hit is not None and hit[1] is info:
                aliases.add(hit[0])
    for alias in sorted(aliases):
        ctx.emit("sql_agg_arg", info.id, agg_id, alias, node=agg)
    if isinstance(agg.parent, exp.Filter):
        ctx.emit("sql_agg_filter", info.id, agg_id, node=agg.parent)
        where = agg.parent.expression
        cond = where.this if isinstance(where, exp.Where) else where
        preds = extract_predicates(cond, lambda n: param_name(ctx, n), ctx.dialect)
        for p in preds:
            for t, c in sorted(base_columns(ctx, info, p.column)):
                ctx.emit(
                    "sql_agg_filter_pred",
                    info.id,
                    agg_id,
                    t,
                    c,
                    p.op,
                    p.vkind,
                    p.value,
                    p.strength,
                    node=p.node,
                )


def _group_item(ctx: Ctx, info: ScopeInfo, node: exp.Select, g: exp.Expr) -> exp.Expr:
    """The expression a GROUP BY item stands for (a position or an output alias followed)."""
    if isinstance(g, exp.Literal) and not g.is_string:
        pos = int(str(g.this))
        if 1 <= pos <= len(node.expressions):
            return node.expressions[pos - 1]
        return g
    if isinstance(g, exp.Column) and not g.args.get("table") and not expr_lineage(ctx, info, g):
        for proj in node.expressions:
            if proj.alias_or_name == g.name:
                return proj
    return g


def bucket_of(node: exp.Expr) -> tuple[str, exp.Expr] | None:
    """``(unit, argument)`` of a calendar truncation (``date_trunc('month', x)``, casts and an
    alias aside), else ``None``.

    >>> from policystrata.sql.adapter import parse_expression
    >>> unit, arg = bucket_of(parse_expression("date_trunc('MONTH', t.d)::date"))
    >>> unit, arg.sql()
    ('month', 't.d')
    """
    return _bucket(node)


def _bucket(node: exp.Expr) -> tuple[str, exp.Expr] | None:
    while isinstance(node, exp.Alias | exp.Cast | exp.Paren):
        node = node.this
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc | exp.DatetimeTrunc):
        unit = node.args.get("unit")
        arg = node.this
        if unit is not None and arg is not None:
            return (unit.name.lower().strip("'"), arg)
    return None


def _group_lineage(ctx: Ctx, info: ScopeInfo, node: exp.Select, g: exp.Expr) -> set[Base]:
    if isinstance(g, exp.Literal) and not g.is_string:
        pos = int(str(g.this))
        if 1 <= pos <= len(node.expressions):
            return expr_lineage(ctx, info, node.expressions[pos - 1])
        return set()
    found = expr_lineage(ctx, info, g)
    if not found and isinstance(g, exp.Column) and not g.args.get("table"):
        names = output_names(ctx, info)
        for proj in node.expressions:
            if proj.alias_or_name == g.name and g.name in names:
                return expr_lineage(ctx, info, proj)
    return found
